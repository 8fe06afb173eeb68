"""Joint training on the tiny fixtures: presets, labels, overfitting, export -> loader -> IP-Adapter,
exact resumption after a kill, every ablation preset, and 2-process DDP through `accelerate launch`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_training import tiny_config

from training.config import build_config
from training.schedule import epoch_order
from training.train import SimulatedKill, train


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps one `AcceleratorState` per process, fixed by the first `Accelerator()`; each
    `train()` here stands for a fresh process (e.g. the bf16 run after fp32 runs), so reset it after
    every test. `_reset_state` is what accelerate's own test-suite uses for the same purpose."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


# -- fast: configuration and data order ---------------------------------------------------------------
def test_presets_overrides_and_clear_errors(tmp_path):
    paper = build_config("paper", [], model="m", data="d", refined="r", targets="t")
    assert (paper.epochs, paper.batch_size, paper.lr, paper.finetune, paper.lambda_embed) == (
        5,
        8,
        1e-5,
        "full",
        2.0,
    )
    assert paper.layer is None  # derived from the model's depth (see the next test)
    lora = build_config(
        "lora", ["lr=0.001", "scheduler=linear"], model="m", data="d", refined="r", targets="t"
    )
    assert (lora.finetune, lora.lr, lora.scheduler, lora.variant) == ("lora", 0.001, "linear", "joint")
    assert build_config("head_only", []).variant == "head_only"
    assert build_config("text_only", []).lora_r == lora.lora_r  # extends lora.yaml
    with pytest.raises(ValueError, match="Unknown training options"):
        build_config(None, ["lamda=3"])
    with pytest.raises(ValueError, match="refine_data"):
        build_config("joint", [], model="m", data="d", targets="t").validate()
    with pytest.raises(ValueError, match="build_targets"):
        build_config("head_only", [], model="m", data="d").validate()
    with pytest.raises(FileNotFoundError, match="shipped presets"):
        build_config("no_such_preset")


def test_paper_preset_derives_layer_m_from_the_depth_and_names_it_when_out_of_range(training_inputs):
    from training.target_store import TargetStore
    from training.train import build_joint_model, resolve_layer

    paper = build_config(
        "paper", [], model=str(training_inputs["model"]), data="d", targets=str(training_inputs["targets"])
    )

    joint, _, layer = build_joint_model(paper, TargetStore(paper.targets), "fp32")
    assert layer == 3 and joint.head.config.layer == 3  # 3/4 of the tiny model's 4 layers
    assert resolve_layer(None, 28) == 21 and resolve_layer(None, 24) == 18
    with pytest.raises(ValueError, match=r"layer=21 .*it has 4 \(1\.\.4\).*layer 3 here"):
        resolve_layer(21, 4, model_name="tiny")


def test_joint_and_head_only_start_from_the_same_head(training_inputs, tmp_path):
    """Issue 23: the head's init must not depend on how many LoRA layers drew from the RNG before it
    (joint: every layer; head_only: below m), or joint vs head_only compares two different inits."""
    from training.target_store import TargetStore
    from training.train import build_joint_model

    heads = {}
    for variant in ("joint", "head_only"):
        cfg = tiny_config(training_inputs, tmp_path / variant, variant=variant, seed=3)
        joint, _, _ = build_joint_model(cfg, TargetStore(cfg.targets), "fp32")
        heads[variant] = joint.head.state_dict()
    assert heads["joint"].keys() == heads["head_only"].keys()
    for name, value in heads["joint"].items():
        assert torch.equal(value, heads["head_only"][name]), name


def test_epoch_order_is_seeded_and_shards_evenly():
    a0 = epoch_order(11, seed=1, epoch=0, rank=0, world=2)
    a1 = epoch_order(11, seed=1, epoch=0, rank=1, world=2)
    assert len(a0) == len(a1) == 5 and not set(a0) & set(a1)
    assert a0 == epoch_order(11, seed=1, epoch=0, rank=0, world=2)
    assert a0 != epoch_order(11, seed=1, epoch=1, rank=0, world=2)


def test_prompt_matches_inference_and_only_the_answer_is_supervised(training_inputs, tmp_path):
    from mindedit_core.mllm import load_mllm
    from mindedit_core.prompting import format_refinement
    from training.collate import IGNORE_INDEX, EditTrainDataset, collate
    from training.data import load_humanedit

    mllm = load_mllm(training_inputs["model"], dtype="fp32", device="cpu")
    record = load_humanedit(training_inputs["data"], cache_dir=tmp_path)[0].with_refined(
        "red square", "blurry"
    )
    dataset = EditTrainDataset(
        [record],
        mllm.processor,
        with_answer=True,
        targets=None,
        target_kind="plain",
        use_mask=True,
        max_side=mllm.default_options.max_image_side,
    )
    sample = dataset[0]
    inference = mllm.prepare_inputs(record.load_source(), record.instruction, mask=record.load_mask())
    n = sample["prompt_len"]
    assert torch.equal(sample["input_ids"][:n], inference["input_ids"][0].cpu())
    assert torch.equal(sample["pixel_values"], inference["pixel_values"][0].cpu())
    assert (sample["labels"][:n] == IGNORE_INDEX).all()
    tokenizer = mllm.processor.tokenizer
    answer = tokenizer.decode(sample["labels"][n:])
    assert answer == format_refinement("red square", "blurry") + "<|im_end|>"
    batch = collate(
        [sample, dataset.encode(record.with_refined("a", "b"))], pad_token_id=tokenizer.pad_token_id
    )
    assert batch["prompt_mask"].sum(1).tolist() == [n, n]
    assert (batch["labels"][1][batch["attention_mask"][1] == 0] == IGNORE_INDEX).all()


# -- slow: real training runs ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def joint_run(training_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("joint-run")
    cfg = tiny_config(
        training_inputs,
        out,
        limit=4,
        batch_size=4,
        max_steps=10,
        lr=1e-2,
        head_lr=1e-2,
        scheduler="constant",
        warmup_ratio=0.0,
        gradient_checkpointing=False,
        lora_dropout=0.0,
    )
    return train(cfg, eval_train=4)


@pytest.mark.slow
def test_joint_training_overfits_both_losses(joint_run):
    start, end = joint_run.train_eval_start, joint_run.train_eval_end
    assert end["ce"] < 0.95 * start["ce"]
    assert end["embed"] < 0.7 * start["embed"]
    assert end["cos"] > start["cos"] + 0.2
    lines = [json.loads(line) for line in (joint_run.output_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 11))
    assert lines[-1]["loss"] < lines[0]["loss"] and lines[-1]["samples_per_s"] > 0
    manifest = json.loads((joint_run.checkpoint_dir / "mindedit.json").read_text())
    assert manifest["variant"] == "joint" and manifest["parts"] == {
        "lora": True,
        "vision_head": True,
        "negative_embeds": False,
    }


@pytest.mark.slow
def test_exported_checkpoint_loads_and_its_v_insight_feeds_the_ipadapter(
    joint_run, training_inputs, tmp_path, fixture_cache
):
    from mindedit_core.mllm import load_mllm
    from training.data import load_humanedit
    from training.losses import cosine_similarity
    from training.target_store import TargetStore

    mllm = load_mllm(
        training_inputs["model"], dtype="fp32", device="cpu", checkpoint_dir=joint_run.checkpoint_dir
    )
    store = TargetStore(training_inputs["targets"])
    records = load_humanedit(training_inputs["data"], cache_dir=tmp_path)[:4]
    v = torch.cat([mllm.embed(r.load_source(), r.instruction, mask=r.load_mask()) for r in records])
    assert tuple(v.shape) == (4, 1024)
    cos = cosine_similarity(v, store.stack([r.id for r in records], "plain")).mean().item()
    # The loader (LoRA merged, inference prompt, hook) reproduces the training-time head output.
    assert cos == pytest.approx(joint_run.train_eval_end["cos"], abs=2e-3)
    # The head outputs the targets' scale, so the IP-Adapter projection sees CLIP-like norms.
    target_norm = store.stack([r.id for r in records], "plain").norm(dim=-1).mean()
    assert v.norm(dim=-1).mean().item() == pytest.approx(target_norm.item(), rel=0.05)

    from devkit.fixtures.ipadapter_files import ipadapter_file
    from mindedit_core.ipadapter import load_ipadapter

    adapter = load_ipadapter(ipadapter_file(fixture_cache, "plain"))
    tokens = adapter.project(v)
    assert tokens.shape[0] == 4 and tokens.ndim == 3 and torch.isfinite(tokens).all()


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_weights(training_inputs, tmp_path):
    from safetensors.torch import load_file

    common = dict(
        limit=4,
        max_steps=4,
        save_every=2,
        lr=5e-3,
        head_lr=5e-3,
        lora_dropout=0.2,
        gradient_checkpointing=False,
        scheduler="cosine",
        warmup_ratio=0.25,
    )
    straight = train(tiny_config(training_inputs, tmp_path / "straight", **common))

    resumed_cfg = tiny_config(training_inputs, tmp_path / "resumed", **common)
    with pytest.raises(SimulatedKill):
        train(resumed_cfg, debug_stop_after=3)  # dies after step 3: newest state is step 2
    torch.manual_seed(1234)  # the resumed process starts with other RNG states
    random.seed(1234)
    resumed = train(tiny_config(training_inputs, tmp_path / "resumed", **common))
    assert [h["step"] for h in resumed.history] == [3, 4]
    # Step 3 was logged before the kill and again after the resume: the log keeps it once.
    logged = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3, 4]
    for step in (3, 4):
        assert resumed.history[step - 3]["loss"] == pytest.approx(
            straight.history[step - 1]["loss"], abs=1e-6
        )
    for name in ("vision_head.safetensors", "lora/adapter_model.safetensors"):
        a = load_file(str(straight.checkpoint_dir / name))
        b = load_file(str(resumed.checkpoint_dir / name))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=f"{name}:{key}")


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset", ["joint", "text_only", "head_only", "paper", "paper_text_only", "paper_head_only"]
)
def test_every_preset_runs_a_step_and_exports(preset, training_inputs, tmp_path):
    from safetensors import safe_open

    cfg = tiny_config(training_inputs, tmp_path, preset, limit=2, max_steps=1, batch_size=2, grad_accum=1)
    assert cfg.gradient_checkpointing  # the presets' own setting is exercised
    result = train(cfg)
    assert result.global_step == 1
    full = cfg.finetune == "full"
    if full:
        assert (result.model_dir / "config.json").is_file()
    if cfg.variant == "text_only" and full:
        assert result.checkpoint_dir is None  # the full model folder is the whole result
        return
    manifest = json.loads((result.checkpoint_dir / "mindedit.json").read_text())
    assert manifest["variant"] == cfg.variant  # one spelling in configs and manifests
    assert manifest["parts"]["vision_head"] == (cfg.variant != "text_only")
    assert manifest["parts"]["lora"] == (not full)
    if cfg.variant == "head_only" and not full:
        with safe_open(str(result.checkpoint_dir / "lora" / "adapter_model.safetensors"), "pt") as fh:
            layers = {int(k.split("layers.")[1].split(".")[0]) for k in fh.keys()}  # noqa: SIM118
        assert layers == set(range(manifest["layer"]))  # LoRA only up to layer m


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(training_inputs, tmp_path, repo_root):
    out = tmp_path / "ddp"
    env = {
        **os.environ,
        "PYTHONPATH": str(repo_root),
        "OMP_NUM_THREADS": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "hf"),
    }
    accelerate = Path(sys.executable).parent / "accelerate"
    cmd = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "training.train",
        "--config",
        "lora",
        "--model",
        str(training_inputs["model"]),
        "--data",
        str(training_inputs["data"]),
        "--refined",
        str(training_inputs["refined"]),
        "--targets",
        str(training_inputs["targets"]),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--set",
        "split=all",
        "limit=4",
        "batch_size=1",
        "grad_accum=2",
        "precision=fp32",
        "gradient_checkpointing=false",
        "progress=false",
        "tensorboard=false",
        "layer=null",
        "save_every=1",
    ]
    proc = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "process 1 of 2 (DistributedType.MULTI_CPU" in proc.stderr
    manifest = json.loads((out / "checkpoint" / "mindedit.json").read_text())
    assert manifest["parts"] == {"lora": True, "vision_head": True, "negative_embeds": False}
    assert sorted(p.name for p in (out / "state" / "step-2").glob("rng-*.pt")) == ["rng-0.pt", "rng-1.pt"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_bf16_with_gradient_checkpointing_trains_and_exports_a_loadable_checkpoint(training_inputs, tmp_path):
    from mindedit_core.mllm import load_mllm

    cfg = tiny_config(
        training_inputs,
        tmp_path,
        limit=2,
        max_steps=2,
        precision="bf16",
        gradient_checkpointing=True,
        lr=1e-2,
        head_lr=1e-2,
    )
    result = train(cfg)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    mllm = load_mllm(
        training_inputs["model"], dtype="fp32", device="cpu", checkpoint_dir=result.checkpoint_dir
    )
    assert mllm.has_head and mllm.head.target_norm.dtype == torch.float32


def test_tensorboard_errors_other_than_missing_are_not_hidden(tmp_path, monkeypatch):
    """Only a missing tensorboard falls back to the JSONL log; a real failure (e.g. an unwritable
    log folder) must reach the user instead of being reported as "not installed"."""
    import sys
    import types

    from training.metrics_log import MetricsLog

    def unwritable(*args, **kwargs):
        raise PermissionError("log folder is read-only")

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = unwritable
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    with pytest.raises(PermissionError, match="read-only"):
        MetricsLog(tmp_path, enabled=True, tensorboard=True)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails: fallback
    assert MetricsLog(tmp_path, enabled=True, tensorboard=True).writer is None
