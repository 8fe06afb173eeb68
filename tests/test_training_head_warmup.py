"""``head_warmup_steps``: the vision head learns alone for the first steps (the body's lr is 0), then the
body runs the configured schedule over the steps left while the head keeps its own."""

from __future__ import annotations

import pytest
import torch
from fixtures_training import tiny_config

from training.config import TrainConfig
from training.schedule import lr_factor, make_scheduler
from training.train import train


def _optimizer(names: list[str]) -> torch.optim.Optimizer:
    groups = [{"name": name, "params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0} for name in names]
    return torch.optim.SGD(groups)


def _lrs(cfg: TrainConfig, names: list[str], total: int) -> list[dict[str, float]]:
    optimizer = _optimizer(names)
    scheduler = make_scheduler(optimizer, cfg, total)
    seen = []
    for _ in range(total):
        seen.append(dict(zip(names, scheduler.get_last_lr())))
        optimizer.step()
        scheduler.step()
    return seen


def test_body_holds_at_zero_then_runs_the_schedule_over_the_steps_left():
    cfg = TrainConfig(head_warmup_steps=4, warmup_ratio=0.25, scheduler="linear")
    seen = _lrs(cfg, ["body", "head"], 12)
    assert [s["body"] for s in seen[:4]] == [0.0] * 4
    # After the hold: the same schedule over the 8 steps left (2 warm-up steps, then linear decay).
    assert [s["body"] for s in seen[4:]] == pytest.approx([lr_factor(i, 8, cfg) for i in range(8)])
    assert seen[4]["body"] == pytest.approx(0.5) and seen[5]["body"] == pytest.approx(1.0)
    # The head follows the whole schedule from step 0.
    assert [s["head"] for s in seen] == pytest.approx([lr_factor(i, 12, cfg) for i in range(12)])


def test_without_head_warmup_every_group_follows_one_schedule():
    cfg = TrainConfig(warmup_ratio=0.1, scheduler="cosine")
    seen = _lrs(cfg, ["body", "head"], 10)
    assert [s["body"] for s in seen] == [s["head"] for s in seen]
    assert seen[0]["body"] == pytest.approx(1.0)  # round(0.1 * 10) = 1 warm-up step: (0 + 1) / 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"head_warmup_steps": -1}, "head_warmup_steps must be >= 0"),
        ({"head_warmup_steps": 5, "variant": "text_only"}, "needs a vision head"),
    ],
)
def test_invalid_head_warmup_is_refused_with_the_fix(overrides, message):
    cfg = TrainConfig(model="m", data="d", refined="r.jsonl", targets="t", **overrides)
    with pytest.raises(ValueError, match=message):
        cfg.validate()


def _lora_b_norms(checkpoint_dir) -> float:
    from safetensors.torch import load_file

    weights = load_file(str(next((checkpoint_dir / "lora").glob("*.safetensors"))))
    b_weights = [w for name, w in weights.items() if "lora_B" in name]
    assert b_weights, "the LoRA checkpoint has no lora_B weights"
    return float(sum(w.float().norm() for w in b_weights))


@pytest.mark.parametrize(("steps", "moved"), [(2, False), (3, True)])
def test_the_body_waits_while_the_head_warms_up(training_inputs, tmp_path, steps, moved):
    """Joint training with a 2-step head warm-up: the LoRA (whose B starts at 0) is still exactly 0
    after step 2 and has moved after step 3; the head learns from step 1; the log records both lrs."""
    cfg = tiny_config(
        training_inputs,
        tmp_path,
        variant="joint",
        limit=2,
        max_steps=steps,
        lr=1e-3,
        head_lr=1e-3,
        scheduler="constant",
        warmup_ratio=0.0,
        head_warmup_steps=2,
        gradient_checkpointing=False,
    )
    result = train(cfg)
    assert [h["lr"] for h in result.history] == pytest.approx([0.0, 0.0, 1e-3][:steps])
    assert [h["head_lr"] for h in result.history] == pytest.approx([1e-3] * steps)
    assert (_lora_b_norms(result.checkpoint_dir) > 0) is moved
