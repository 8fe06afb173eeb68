"""Joint training of the MLLM (LoRA or full) and the vision head ``F_v``, and the ablation variants.

    python -m training.train --config training/configs/lora.yaml \\
        --model /models/llava-onevision-qwen2-7b-ov-hf --data /data/HumanEdit \\
        --refined runs/refined.jsonl --targets runs/targets --out runs/joint

    accelerate launch --config_file training/accelerate/ddp.yaml -m training.train --config ... (many GPUs)

Loss: ``CE(assistant answer) + lambda * (1 - cos(F_v(h_m), CLIP(target)))`` (variant ``joint``), or one
of the two (``text_only`` / ``head_only``). Resumable: ``<out>/state/step-N`` holds the trainable
weights, optimizer, scheduler, data position and RNG; rerunning the same command resumes from the
newest one and reproduces the uninterrupted run. At the end the MIND-Edit checkpoint the loader
reads is written to ``<out>/checkpoint`` (LoRA + head; full fine-tuning also writes ``<out>/model``).
Logs: console, ``<out>/metrics.jsonl``, TensorBoard (``<out>/tensorboard``) when installed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from mindedit_core.mllm.families import MLLMFamily, family_names, family_of
from mindedit_core.vision_head import VisionHead, VisionHeadConfig, turn_start_token_id
from mindedit_core.vision_head import default_layer as paper_default_layer

from .cli_errors import add_verbose_flag, run_command
from .collate import EditTrainDataset, collate
from .config import TrainConfig, build_config, options_help
from .export import export_trained
from .fsdp_wrap import configure_fsdp_wrap
from .input_dependence import collapse_warning, input_dependence
from .joint_model import JointModel, unwrap_peft
from .metrics_log import MetricsLog, format_metrics
from .model_setup import (
    add_lora,
    enable_gradient_checkpointing,
    load_base_model,
    num_layers,
    prepare_full_finetune,
    resolve_precision,
)
from .output_lock import lock_output_folder
from .parent_watch import watch_launcher
from .schedule import epoch_order, make_scheduler, steps_per_epoch
from .state import restore_training_state, save_training_state, state_to_resume
from .target_store import TargetStore
from .train_data import SPLIT_ALL, select_training_records

log = logging.getLogger("training.train")
CHECKS_LOG = "head_checks.jsonl"  # one line per held-out head check (cos, spread, collapse)

TRAIN_DATA_FILE = "train_data.json"  # <out>/train_data.json: the dataset, split and record ids trained on


class SimulatedKill(RuntimeError):
    """Raised by ``debug_stop_after`` (tests): the run stops as if killed right after a state save."""


@dataclass
class TrainResult:
    output_dir: Path
    global_step: int
    checkpoint_dir: Path | None
    model_dir: Path | None
    history: list[dict] = field(default_factory=list)
    train_eval_start: dict | None = None  # the `eval_train` check before training (held-out records)
    train_eval_end: dict | None = None  # ... and after
    eval_where: str = ""  # "held-out records", or training records when the split has none
    checks: list[dict] = field(default_factory=list)  # every held-out check: {"step", metrics...}
    collapse_warning: str | None = None  # the last check's warning (None: outputs depend on the input)


# -- model --------------------------------------------------------------------------------------------
def build_joint_model(
    cfg: TrainConfig, targets: TargetStore | None, precision: str, train_ids: list[str] | None = None
):
    """``(joint_model, processor, layer)``: base model, LoRA/full trainable parts, vision head."""
    lora_bf16 = precision == "bf16" and cfg.finetune == "lora"
    model, processor = load_base_model(
        cfg.model,
        weights_dtype=torch.bfloat16 if lora_bf16 else torch.float32,
        attn_implementation=cfg.attn_implementation,
    )
    family = family_of(model)
    layer = resolve_layer(
        cfg.layer,
        num_layers(model),
        model_name=Path(cfg.model).name,
        family=family,
        readable=family.readable_layers(model),
    )
    family.check_layer(model, layer)
    for p in model.parameters():
        p.requires_grad = False
    if cfg.finetune == "lora":
        # Layers after m cannot change the head's input: without a text loss they are left alone.
        layers = list(range(layer)) if cfg.variant == "head_only" else None
        model = add_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, layers=layers)
    else:
        prepare_full_finetune(model, train_vision_tower=cfg.train_vision_tower)
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    head = None
    if cfg.uses_head:
        assert targets is not None
        shape = targets.sample_shape(cfg.head_kind)
        spec_kwargs = {"out_dim": shape[-1], "out_tokens": shape[0] if len(shape) == 2 else None}
        hidden, _depth = family.text_dims(unwrap_peft(model))
        if cfg.head_pool == "user_turn":
            spec_kwargs["turn_start_id"] = turn_start_token_id(
                getattr(processor, "tokenizer", processor), family.turn_start
            )
        # The head's init depends on the seed only, not on how many LoRA layers drew from the RNG
        # before it: joint and head_only (LoRA on every layer vs below m) start from the same head.
        torch.manual_seed(cfg.seed + HEAD_SEED_OFFSET)
        head = VisionHead(
            VisionHeadConfig(
                hidden_size=hidden,
                layer=layer,
                kind=cfg.head_kind,
                width=cfg.head_width,
                pool=cfg.head_pool,
                **spec_kwargs,
            )
        )
        # The output scale is measured on training targets only (at most 512 of them).
        sample_ids = sorted(train_ids or targets.ids(cfg.head_kind))[:512]
        head.set_target_norm(targets.stack(sample_ids, cfg.head_kind))
    joint = JointModel(model, head, layer=layer, text_loss=cfg.uses_text, lambda_embed=cfg.lambda_embed)
    return joint, processor, layer


# Added to the seed for the head's init, so it does not repeat the LoRA's random draws.
HEAD_SEED_OFFSET = 7919


def resolve_layer(
    requested: int | None,
    depth: int,
    *,
    model_name: str = "the model",
    family: MLLMFamily | None = None,
    readable: int | None = None,
) -> int:
    """Layer m: the configured one, else the family's default (3/4 of the depth: 21 of 28, 3 of 4; at
    most the deepest layer generation computes for the whole prompt, ``readable``)."""
    default = (
        family.default_layer(depth, readable=readable) if family is not None else paper_default_layer(depth)
    )
    layer = requested if requested is not None else default
    if not 1 <= layer <= depth:
        raise ValueError(
            f"layer={layer} is outside {model_name}'s decoder layers: it has {depth} (1..{depth}). Leave "
            f"`layer` unset for 3/4 of the depth (layer {default} here), or set one in 1..{depth}."
        )
    return layer


def _edit_dataset(cfg: TrainConfig, records, processor, targets, family) -> EditTrainDataset:
    """The training examples of ``records`` as ``cfg`` encodes them (the training set and the held-out checks)."""
    return EditTrainDataset(
        records,
        processor,
        with_answer=cfg.uses_text,
        targets=targets,
        target_kind=cfg.head_kind,
        use_mask=cfg.use_mask,
        max_side=cfg.max_side,
        family=family,
    )


def param_groups(joint: JointModel, cfg: TrainConfig) -> list[dict]:
    body = [p for n, p in joint.named_parameters() if p.requires_grad and not n.startswith("head.")]
    groups = []
    if body:
        groups.append({"name": "body", "params": body, "lr": cfg.lr, "weight_decay": cfg.weight_decay})
    if joint.head is not None:
        groups.append(
            {
                "name": "head",
                "params": list(joint.head.parameters()),
                "lr": cfg.head_lr or cfg.lr,
                "weight_decay": 0.0,
            }
        )
    return groups


# -- evaluation: losses and the head's input dependence, on held-out records when the split has them --
@torch.no_grad()
def evaluate(joint: JointModel, loader, device, mean_target: torch.Tensor | None = None) -> dict:
    """Mean CE / 1 - cos / cos over ``loader`` and, with a head, its input dependence
    (`training.input_dependence`: spread of the outputs, cos to ``mean_target``, ``collapsed``)."""
    was_training = joint.training
    joint.eval()
    sums: dict[str, float] = {}
    count = 0
    predictions, targets = [], []
    for batch in loader:
        out = joint(**_model_inputs(batch, device), keep_prediction=True)
        n = batch["input_ids"].shape[0]
        for key in ("ce", "embed", "cos"):
            if key in out:
                sums[key] = sums.get(key, 0.0) + float(out[key]) * n
        if "prediction" in out:
            predictions.append(out["prediction"].float().cpu())
            targets.append(batch["target"].float())
        count += n
    joint.train(was_training)
    result = {k: v / max(1, count) for k, v in sums.items()}
    if len(predictions) and count >= 2:
        result.update(input_dependence(torch.cat(predictions), torch.cat(targets), mean_target))
    return result


def _report_check(what: str, metrics: dict, where: str) -> str | None:
    """Log one evaluation; a collapsed head is logged as an error-level warning. Returns the warning."""
    shown = {k: v for k, v in metrics.items() if k != "collapsed"}
    log.info("%s (%s): %s", what, where, format_metrics(shown))
    warning = collapse_warning(metrics, where=where)
    if warning:
        log.error("%s", warning)
    return warning


def _check_records(cfg: TrainConfig, targets: TargetStore | None, limit: int, train_records):
    """``(records, where)``: up to ``limit`` records of the split's test part (held out); the training
    records, labelled so, when the run has no held-out part (``split=all``) or it is empty."""
    if cfg.split not in SPLIT_ALL and cfg.subset != "test":
        try:
            held_out = select_training_records(replace(cfg, subset="test", limit=limit), targets=targets)
            return held_out, "held-out records"
        except ValueError as exc:
            log.warning("No held-out records to check the head on (%s): using training records.", exc)
    else:
        log.warning("split=%s has no held-out part: the head is checked on training records.", cfg.split)
    return train_records[:limit], "training records (not held out)"


def _model_inputs(batch: dict, device) -> dict:
    """Every tensor of the batch (token ids, masks, labels, target and the family's image tensors)."""
    return {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}


# -- main loop ----------------------------------------------------------------------------------------
def train(cfg: TrainConfig, *, debug_stop_after: int | None = None, eval_train: int = 0) -> TrainResult:
    """Run (or resume) a training. ``eval_train`` > 0 evaluates that many held-out records (the split's
    test part; training records only when the split has none) before and after: mean CE, cosine and
    the head's input dependence. ``debug_stop_after``: raise `SimulatedKill` after that optimizer step's
    state save (tests of exact resumption)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    cfg.validate()
    watch_launcher()  # a worker of `accelerate launch` / torchrun stops when the launcher is killed
    precision = resolve_precision(cfg.precision)
    ddp_kwargs = DistributedDataParallelKwargs(find_unused_parameters=cfg.variant == "head_only")
    accelerator = Accelerator(
        mixed_precision="bf16" if precision == "bf16" else "no",
        kwargs_handlers=[ddp_kwargs],
        # Without CUDA, processes started by `accelerate launch` / torchrun form a gloo (CPU) group.
        cpu=not torch.cuda.is_available(),
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    log.info(
        "accelerate: process %d of %d (%s, %s)", rank, world, accelerator.distributed_type, accelerator.device
    )
    out = Path(cfg.output_dir)
    lock = lock_output_folder(accelerator, out)
    try:
        return _train_locked(cfg, accelerator, out, precision, debug_stop_after, eval_train)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(
    cfg: TrainConfig, accelerator, out: Path, precision: str, debug_stop_after: int | None, eval_train: int
) -> TrainResult:
    from accelerate.utils import DistributedType

    rank, world = accelerator.process_index, accelerator.num_processes
    cfg.check_paths()
    if accelerator.is_main_process:
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    torch.manual_seed(cfg.seed)  # same LoRA/head init on every process

    targets = TargetStore(cfg.targets) if cfg.uses_head else None
    records = select_training_records(cfg, targets=targets)
    if accelerator.is_main_process:  # what this run trains on (also in the checkpoint's manifest)
        record = {"data": records.provenance, "trained_ids": records.ids()}
        (out / TRAIN_DATA_FILE).write_text(json.dumps(record, indent=1))
    joint, processor, layer = build_joint_model(cfg, targets, precision, records.ids())
    tokenizer = getattr(processor, "tokenizer", processor)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    dataset = _edit_dataset(cfg, records, processor, targets, family_of(unwrap_peft(joint.mllm)))
    collate_fn = partial(collate, pad_token_id=pad_id)
    n = len(dataset)
    if n < world:
        raise ValueError(f"{n} training records cannot be shared by {world} processes.")
    per_epoch = steps_per_epoch(n, cfg, world)
    total_steps = cfg.max_steps or per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(param_groups(joint, cfg))
    scheduler = make_scheduler(optimizer, cfg, total_steps)
    if accelerator.distributed_type == DistributedType.FSDP:
        configure_fsdp_wrap(accelerator.state.fsdp_plugin, joint.mllm)  # this family's layer classes
    joint, optimizer = accelerator.prepare(joint, optimizer)
    sharded = accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)
    if accelerator.distributed_type == DistributedType.DEEPSPEED and cfg.grad_accum > 1:
        # accelerate's DeepSpeed wrapper steps the engine inside backward(): accumulation belongs to
        # DeepSpeed's own config there.
        raise ValueError(
            f"grad_accum={cfg.grad_accum} is not supported under DeepSpeed: set grad_accum=1 and put "
            "gradient_accumulation_steps in the deepspeed_config of your accelerate config file."
        )

    # -- resume --
    global_step, epoch, window_in_epoch = 0, 0, 0
    state = state_to_resume(out, cfg.resume)
    if state is not None:
        progress = restore_training_state(accelerator, joint, optimizer, scheduler, state, sharded=sharded)
        global_step, epoch, window_in_epoch = progress["global_step"], progress["epoch"], progress["window"]
        log.info("Resumed from %s (step %d, epoch %d).", state, global_step, epoch)

    metrics_log = MetricsLog(out, accelerator.is_main_process, cfg.tensorboard, start_step=global_step)
    result = TrainResult(out, global_step, None, None)
    main = accelerator.is_main_process
    # Held-out checks: `eval_train` records before/after, and `eval_records` for the head's input
    # dependence every `eval_every` steps and at the end.
    head_checks = cfg.eval_records if cfg.uses_head else 0
    check_loader = start_loader = None
    mean_target = None
    if head_checks or eval_train:
        check_records, result.eval_where = _check_records(cfg, targets, max(head_checks, eval_train), records)
        check_set = _edit_dataset(cfg, check_records, processor, targets, dataset.family)

        def loader_of(count: int) -> DataLoader:
            # Its own generator: a check must not draw from the global RNG (exact resume).
            return DataLoader(
                Subset(check_set, list(range(min(count, len(check_set))))),
                batch_size=cfg.batch_size,
                collate_fn=collate_fn,
                generator=torch.Generator().manual_seed(0),
            )

        check_loader = loader_of(head_checks) if head_checks else None
        start_loader = loader_of(eval_train) if eval_train else None
        if targets is not None and cfg.uses_head:
            mean_target = targets.stack(sorted(records.ids())[:512], cfg.head_kind).mean(dim=0)
    if start_loader is not None and state is None:
        result.train_eval_start = evaluate(joint, start_loader, accelerator.device, mean_target)
        if main:
            _report_check("check before training", result.train_eval_start, result.eval_where)

    def check_head(step: int) -> None:
        metrics = evaluate(joint, check_loader, accelerator.device, mean_target)
        result.checks.append({"step": step, **metrics})
        result.collapse_warning = collapse_warning(metrics, where=result.eval_where)
        if main:
            _report_check(f"head check at step {step}", metrics, result.eval_where)
            with (out / CHECKS_LOG).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": step, "on": result.eval_where, **metrics}) + "\n")

    from tqdm import tqdm

    bar = tqdm(
        total=total_steps,
        initial=global_step,
        desc="train",
        unit="step",
        disable=not (cfg.progress and accelerator.is_local_main_process),
    )
    joint.train()
    started = time.perf_counter()
    samples_seen = 0
    while global_step < total_steps:
        order = epoch_order(n, seed=cfg.seed, epoch=epoch, rank=rank, world=world)
        skip = window_in_epoch * cfg.grad_accum * cfg.batch_size
        loader = DataLoader(
            Subset(dataset, order[skip:]),
            batch_size=cfg.batch_size,
            collate_fn=collate_fn,
            num_workers=cfg.num_workers,
            # Its own generator: creating a loader must not draw from the global RNG (exact resume).
            generator=torch.Generator().manual_seed(cfg.seed + epoch),
        )
        batches = iter(loader)
        windows_left = per_epoch - window_in_epoch
        for _ in range(windows_left):
            if global_step >= total_steps:
                break
            window = [b for b in (next(batches, None) for _ in range(cfg.grad_accum)) if b is not None]
            sums: dict[str, float] = {}
            for j, batch in enumerate(window):
                sync = j == len(window) - 1
                with nullcontext() if sync else accelerator.no_sync(joint):
                    outputs = joint(**_model_inputs(batch, accelerator.device))
                    accelerator.backward(outputs["loss"] / len(window))
                for key, value in outputs.items():
                    sums[key] = sums.get(key, 0.0) + value.detach().float() / len(window)
                samples_seen += batch["input_ids"].shape[0] * world
            if cfg.max_grad_norm:
                accelerator.clip_grad_norm_(joint.parameters(), cfg.max_grad_norm)
            # The lr this step's update used: read before scheduler.step() sets the next step's.
            lrs_used = dict(zip((g.get("name") for g in optimizer.param_groups), scheduler.get_last_lr()))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            global_step += 1
            window_in_epoch += 1
            bar.update(1)
            # Metrics averaged over processes (one small all-reduce per optimizer step).
            names = sorted(sums)
            means = accelerator.reduce(torch.stack([sums[k] for k in names]).to(accelerator.device), "mean")
            averaged = {k: float(v) for k, v in zip(names, means.tolist())}
            record = {"step": global_step, "epoch": epoch, "lr": next(iter(lrs_used.values())), **averaged}
            if "head" in lrs_used and len(lrs_used) > 1:
                record["head_lr"] = lrs_used["head"]
            record["samples_per_s"] = samples_seen / max(1e-9, time.perf_counter() - started)
            result.history.append(record)
            metrics_log.write(record)
            if accelerator.is_main_process and (
                global_step % cfg.log_every == 0 or global_step == total_steps
            ):
                log.info("step %d/%d %s", global_step, total_steps, format_metrics(record))
            periodic = cfg.eval_every and global_step % cfg.eval_every == 0
            if check_loader is not None and periodic and global_step < total_steps:
                check_head(global_step)  # (the last step's check follows the loop)
            if global_step % cfg.save_every == 0 or global_step == total_steps:
                save_training_state(
                    accelerator,
                    joint,
                    optimizer,
                    scheduler,
                    out,
                    sharded=sharded,
                    keep=cfg.keep_states,
                    progress={"global_step": global_step, "epoch": epoch, "window": window_in_epoch},
                )
            if debug_stop_after is not None and global_step >= debug_stop_after:
                bar.close()
                metrics_log.close()
                raise SimulatedKill(f"stopped after step {global_step}")
        if window_in_epoch >= per_epoch:
            epoch += 1
            window_in_epoch = 0
    bar.close()

    if check_loader is not None:
        check_head(global_step)
    if start_loader is not None:
        result.train_eval_end = evaluate(joint, start_loader, accelerator.device, mean_target)
        if main:
            _report_check("check after training", result.train_eval_end, result.eval_where)
    accelerator.wait_for_everyone()
    result.global_step = global_step
    result.checkpoint_dir, result.model_dir = export_trained(
        accelerator,
        joint,
        processor,
        cfg,
        out,
        layer,
        global_step=global_step,
        final_metrics=result.history[-1] if result.history else None,
        negative_embeds=targets.unconditional(cfg.head_kind) if targets is not None else None,
        data=records.provenance,
        trained_ids=records.ids(),
        head_check=result.checks[-1] if result.checks else None,
        head_check_where=result.eval_where,
    )
    metrics_log.close()
    accelerator.wait_for_everyone()
    return result


# -- command line -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__,
        epilog=options_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config", default=None, help="YAML/JSON config or preset name (lora, paper, text_only, ...)"
    )
    p.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="override any option (listed below)"
    )
    p.add_argument("--model", default=None, help=f"local folder of a supported VLM ({family_names()})")
    p.add_argument("--data", default=None)
    p.add_argument("--format", dest="data_format", default=None)
    p.add_argument("--refined", default=None, help="refine_data JSONL")
    p.add_argument("--targets", default=None, help="build_targets folder")
    p.add_argument("--out", dest="output_dir", default=None)
    p.add_argument("--variant", default=None, choices=("joint", "text_only", "head_only"))
    p.add_argument("--max-steps", dest="max_steps", type=int, default=None)
    p.add_argument(
        "--eval-train",
        type=int,
        default=0,
        help="check N held-out records (the split's test part) before/after: CE, cosine, input dependence",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_command(lambda: _run(args), verbose=args.verbose)


def _run(args: argparse.Namespace) -> int:
    explicit = {
        k: getattr(args, k)
        for k in ("model", "data", "data_format", "refined", "targets", "output_dir", "variant", "max_steps")
    }
    cfg = build_config(args.config, args.set, **explicit)
    result = train(cfg, eval_train=args.eval_train)
    for name, check in (("before", result.train_eval_start), ("after", result.train_eval_end)):
        if check:
            print(f"check {name} training ({result.eval_where}): {format_metrics(check)}")
    if result.collapse_warning or collapse_warning(result.train_eval_end, where=result.eval_where):
        print("WARNING: " + (result.collapse_warning or collapse_warning(result.train_eval_end)))
    if result.checkpoint_dir:
        print(f"checkpoint: {result.checkpoint_dir}")
    if result.model_dir:
        print(f"model: {result.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
