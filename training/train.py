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
import math
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from mindedit_core.vision_head import VisionHead, VisionHeadConfig, default_layer

from .collate import EditTrainDataset, collate
from .config import TrainConfig, build_config
from .joint_model import JointModel, unwrap_peft
from .model_setup import (
    add_lora,
    enable_gradient_checkpointing,
    load_base_model,
    num_layers,
    prepare_full_finetune,
    resolve_precision,
)
from .state import (
    begin_state_dir,
    commit_state_dir,
    latest_state,
    load_local_state,
    load_progress,
    save_local_state,
    save_progress,
)
from .target_store import TargetStore
from .train_data import select_training_records

log = logging.getLogger("training.train")


class SimulatedKill(RuntimeError):
    """Raised by ``debug_stop_after`` (tests): the run stops as if killed right after a state save."""


@dataclass
class TrainResult:
    output_dir: Path
    global_step: int
    checkpoint_dir: Path | None
    model_dir: Path | None
    history: list[dict] = field(default_factory=list)
    train_eval_start: dict | None = None
    train_eval_end: dict | None = None


# -- data order -------------------------------------------------------------------------------------
def epoch_order(n: int, *, seed: int, epoch: int, rank: int, world: int) -> list[int]:
    """This process's sample order for ``epoch``: a seeded permutation, split into equal rank blocks
    (the tail that does not divide evenly is dropped so every rank runs the same number of steps)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    per_rank = n // world
    return order[rank * per_rank : (rank + 1) * per_rank]


def steps_per_epoch(n: int, cfg: TrainConfig, world: int) -> int:
    micro = math.ceil((n // world) / cfg.batch_size)
    return math.ceil(micro / cfg.grad_accum)


def make_scheduler(optimizer, cfg: TrainConfig, total_steps: int):
    warmup = int(round(cfg.warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        if cfg.scheduler == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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
    depth = num_layers(model)
    layer = cfg.layer or default_layer(depth)
    if not 1 <= layer <= depth:
        raise ValueError(f"layer={layer} is outside the model's 1..{depth} decoder layers.")
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
        hidden = unwrap_peft(model).config.text_config.hidden_size
        head = VisionHead(
            VisionHeadConfig(
                hidden_size=hidden, layer=layer, kind=cfg.head_kind, width=cfg.head_width, **spec_kwargs
            )
        )
        # The output scale is measured on training targets only (at most 512 of them).
        sample_ids = sorted(train_ids or targets.ids(cfg.head_kind))[:512]
        head.set_target_norm(targets.stack(sample_ids, cfg.head_kind))
    joint = JointModel(model, head, layer=layer, text_loss=cfg.uses_text, lambda_embed=cfg.lambda_embed)
    return joint, processor, layer


def param_groups(joint: JointModel, cfg: TrainConfig) -> list[dict]:
    body = [p for n, p in joint.named_parameters() if p.requires_grad and not n.startswith("head.")]
    groups = []
    if body:
        groups.append({"params": body, "lr": cfg.lr, "weight_decay": cfg.weight_decay})
    if joint.head is not None:
        groups.append(
            {"params": list(joint.head.parameters()), "lr": cfg.head_lr or cfg.lr, "weight_decay": 0.0}
        )
    return groups


# -- logging ------------------------------------------------------------------------------------------
class MetricsLog:
    """metrics.jsonl (main process) + TensorBoard when the package is installed.

    ``start_step`` is the step the run starts from (0, or the resumed state's step): records of later
    steps, logged by a run that was killed before its next state save, are dropped from the JSONL
    and purged from TensorBoard, so every step appears once.
    """

    def __init__(self, out: Path, enabled: bool, tensorboard: bool, start_step: int = 0) -> None:
        self.enabled = enabled
        self.path = out / "metrics.jsonl"
        self.writer = None
        if enabled and self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for line in lines if _logged_step(line) <= start_step]
            if len(kept) != len(lines):
                self.path.write_text("".join(kept), encoding="utf-8")
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: say so once, keep the JSONL log
                log.info(
                    "TensorBoard is not installed (pip install tensorboard); metrics go to %s.", self.path
                )
            else:
                self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=start_step + 1)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(f"train/{key}", value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _logged_step(line: str) -> float:
    """The step of one metrics.jsonl line (a line cut short by a kill counts as after every step)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


# -- evaluation on the training set (sanity check; no dropout) -------------------------------------
@torch.no_grad()
def evaluate(joint: JointModel, loader, device) -> dict:
    was_training = joint.training
    joint.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in loader:
        out = joint(**_model_inputs(batch, device))
        n = batch["input_ids"].shape[0]
        for key in ("ce", "embed", "cos"):
            if key in out:
                sums[key] = sums.get(key, 0.0) + float(out[key]) * n
        count += n
    joint.train(was_training)
    return {k: v / max(1, count) for k, v in sums.items()}


def _model_inputs(batch: dict, device) -> dict:
    """Every tensor of the batch (token ids, masks, labels, target and the family's image tensors)."""
    return {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}


# -- main loop ----------------------------------------------------------------------------------------
def train(cfg: TrainConfig, *, debug_stop_after: int | None = None, eval_train: int = 0) -> TrainResult:
    """Run (or resume) a training. ``eval_train`` > 0 evaluates that many training samples before and
    after (mean CE and cosine). ``debug_stop_after``: raise `SimulatedKill` after that optimizer step's
    state save (tests of exact resumption)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, DistributedType

    cfg.validate()
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
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    torch.manual_seed(cfg.seed)  # same LoRA/head init on every process

    targets = TargetStore(cfg.targets) if cfg.uses_head else None
    records = select_training_records(cfg, targets=targets)
    joint, processor, layer = build_joint_model(cfg, targets, precision, records.ids())
    tokenizer = getattr(processor, "tokenizer", processor)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    dataset = EditTrainDataset(
        records,
        processor,
        with_answer=cfg.uses_text,
        targets=targets,
        target_kind=cfg.head_kind,
        use_mask=cfg.use_mask,
        max_side=cfg.max_side,
    )
    collate_fn = partial(collate, pad_token_id=pad_id)
    n = len(dataset)
    if n < world:
        raise ValueError(f"{n} training records cannot be shared by {world} processes.")
    per_epoch = steps_per_epoch(n, cfg, world)
    total_steps = cfg.max_steps or per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(param_groups(joint, cfg))
    scheduler = make_scheduler(optimizer, cfg, total_steps)
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
    state = None
    if cfg.resume == "auto":
        state = latest_state(out)
    elif cfg.resume != "never":
        state = Path(cfg.resume)
    if state is not None:
        if sharded:
            accelerator.load_state(str(state / "accelerate"))
            scheduler.load_state_dict(torch.load(state / "scheduler.pt", weights_only=False))
        else:
            load_local_state(state, accelerator.unwrap_model(joint), optimizer, scheduler)
        progress = load_progress(state, rank=rank)
        global_step, epoch, window_in_epoch = progress["global_step"], progress["epoch"], progress["window"]
        log.info("Resumed from %s (step %d, epoch %d).", state, global_step, epoch)

    metrics_log = MetricsLog(out, accelerator.is_main_process, cfg.tensorboard, start_step=global_step)
    eval_loader = None
    result = TrainResult(out, global_step, None, None)
    if eval_train:
        eval_loader = DataLoader(
            Subset(dataset, list(range(min(eval_train, n)))), batch_size=cfg.batch_size, collate_fn=collate_fn
        )
        if state is None:
            result.train_eval_start = evaluate(joint, eval_loader, accelerator.device)
            log.info("train-set check before training: %s", _fmt(result.train_eval_start))

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
            record = {"step": global_step, "epoch": epoch, "lr": scheduler.get_last_lr()[0], **averaged}
            record["samples_per_s"] = samples_seen / max(1e-9, time.perf_counter() - started)
            result.history.append(record)
            metrics_log.write(record)
            if accelerator.is_main_process and (
                global_step % cfg.log_every == 0 or global_step == total_steps
            ):
                log.info("step %d/%d %s", global_step, total_steps, _fmt(record))
            if global_step % cfg.save_every == 0 or global_step == total_steps:
                _save_state(
                    accelerator,
                    joint,
                    optimizer,
                    scheduler,
                    out,
                    cfg,
                    sharded,
                    {"global_step": global_step, "epoch": epoch, "window": window_in_epoch},
                )
            if debug_stop_after is not None and global_step >= debug_stop_after:
                bar.close()
                metrics_log.close()
                raise SimulatedKill(f"stopped after step {global_step}")
        if window_in_epoch >= per_epoch:
            epoch += 1
            window_in_epoch = 0
    bar.close()

    if eval_loader is not None:
        result.train_eval_end = evaluate(joint, eval_loader, accelerator.device)
        log.info("train-set check after training: %s", _fmt(result.train_eval_end))
    accelerator.wait_for_everyone()
    result.global_step = global_step
    _export(accelerator, joint, processor, cfg, out, layer, result)
    metrics_log.close()
    accelerator.wait_for_everyone()
    return result


def _fmt(record: dict) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items() if k != "step"
    )


def _save_state(
    accelerator, joint, optimizer, scheduler, out: Path, cfg: TrainConfig, sharded: bool, progress: dict
):
    step = progress["global_step"]
    tmp = out / "state" / f".tmp-step-{step}"
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        begin_state_dir(out, step)
    accelerator.wait_for_everyone()
    if sharded:  # every process writes its shard
        accelerator.save_state(str(tmp / "accelerate"))
        if accelerator.is_main_process:
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    elif accelerator.is_main_process:
        save_local_state(tmp, accelerator.unwrap_model(joint), optimizer, scheduler)
    save_progress(tmp, progress, rank=accelerator.process_index)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        commit_state_dir(tmp, step, keep=cfg.keep_states)
    accelerator.wait_for_everyone()


def _export(
    accelerator, joint, processor, cfg: TrainConfig, out: Path, layer: int, result: TrainResult
) -> None:
    """Write the MIND-Edit checkpoint (and the full model folder after full fine-tuning)."""
    from mindedit_core.checkpoint import base_model_info, save_mindedit_checkpoint

    full_state = accelerator.get_state_dict(joint)  # gathers shards under ZeRO-3 / FSDP
    if not accelerator.is_main_process:
        return
    unwrapped: JointModel = accelerator.unwrap_model(joint)
    core = unwrap_peft(unwrapped.mllm)
    head = unwrapped.head
    if head is not None:
        head.load_state_dict({k[len("head.") :]: v for k, v in full_state.items() if k.startswith("head.")})
        head = head.float().cpu()
    info = base_model_info(core.config, name=Path(cfg.model).name)
    extra = {
        "train": {k: v for k, v in cfg.to_dict().items() if k not in ("column_map",)},
        "global_step": result.global_step,
        "final_metrics": result.history[-1] if result.history else None,
    }
    if cfg.finetune == "full":
        model_dir = out / "model"
        mllm_state = {k[len("mllm.") :]: v for k, v in full_state.items() if k.startswith("mllm.")}
        core.save_pretrained(str(model_dir), state_dict=mllm_state)
        processor.save_pretrained(str(model_dir))
        result.model_dir = model_dir
        log.info("Full fine-tuned model written to %s (use it as the base model folder).", model_dir)
    if head is None and cfg.finetune == "full":
        return
    lora = unwrapped.mllm if cfg.finetune == "lora" else None
    result.checkpoint_dir = save_mindedit_checkpoint(
        out / "checkpoint",
        base=info,
        head=head,
        lora_model=lora,
        variant=cfg.variant,  # the manifest's spelling (mindedit_core.checkpoint.VARIANTS)
        layer=layer,
        extra=extra,
        overwrite=True,
    )
    log.info("MIND-Edit checkpoint written to %s.", result.checkpoint_dir)


# -- command line -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config", default=None, help="YAML/JSON config or preset name (lora, paper, text_only, ...)"
    )
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override any option")
    p.add_argument("--model", default=None, help="local LLaVA-OneVision folder")
    p.add_argument("--data", default=None)
    p.add_argument("--format", dest="data_format", default=None)
    p.add_argument("--refined", default=None, help="refine_data JSONL")
    p.add_argument("--targets", default=None, help="build_targets folder")
    p.add_argument("--out", dest="output_dir", default=None)
    p.add_argument("--variant", default=None, choices=("joint", "text_only", "head_only"))
    p.add_argument("--max-steps", dest="max_steps", type=int, default=None)
    p.add_argument("--eval-train", type=int, default=0, help="check N training samples before/after")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    explicit = {
        k: getattr(args, k)
        for k in ("model", "data", "data_format", "refined", "targets", "output_dir", "variant", "max_steps")
    }
    cfg = build_config(args.config, args.set, **explicit)
    result = train(cfg, eval_train=args.eval_train)
    if result.checkpoint_dir:
        print(f"checkpoint: {result.checkpoint_dir}")
    if result.model_dir:
        print(f"model: {result.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
