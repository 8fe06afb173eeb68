"""The lr logged for a step (console, metrics.jsonl, TensorBoard) is the lr that step's update used,
not the next step's (the last step used to log 0 under a linear schedule)."""

from __future__ import annotations

import json
import logging

import pytest
from fixtures_training import tiny_config

from training.train import train


def test_logged_lr_is_the_lr_used_at_that_step(training_inputs, tmp_path, caplog):
    pytest.importorskip("tensorboard")
    cfg = tiny_config(
        training_inputs,
        tmp_path,
        variant="head_only",
        limit=2,
        max_steps=2,
        lr=1e-3,
        head_lr=1e-3,
        scheduler="linear",
        warmup_ratio=0.0,
        gradient_checkpointing=False,
        tensorboard=True,
    )
    with caplog.at_level(logging.INFO, logger="training.train"):
        result = train(cfg)
    # linear decay over 2 steps, no warmup: step 1 runs at 1e-3, step 2 at 5e-4 (then 0, unused).
    expected = [1e-3, 5e-4]
    assert [h["lr"] for h in result.history] == pytest.approx(expected)
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in logged] == pytest.approx(expected)
    console = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert "lr=0.001 " in console[0] and "lr=0.0005 " in console[1]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/lr")] == [
        (1, pytest.approx(1e-3)),
        (2, pytest.approx(5e-4)),
    ]
