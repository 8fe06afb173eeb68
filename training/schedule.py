"""The training schedule: each epoch's seeded sample order per process, steps per epoch, the lr schedule.

The order of an epoch depends only on (seed, epoch, rank, world), so a resumed run continues with
exactly the samples an uninterrupted one would have seen.
"""

from __future__ import annotations

import math

import torch

from .config import TrainConfig


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


def lr_factor(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """The schedule's multiplier of the base lr at optimizer ``step`` of ``total_steps``."""
    warmup = int(round(cfg.warmup_ratio * total_steps))
    if warmup and step < warmup:
        return (step + 1) / warmup
    if cfg.scheduler == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total_steps - warmup)
    if cfg.scheduler == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_scheduler(optimizer, cfg: TrainConfig, total_steps: int):
    """One schedule for every parameter group; with ``cfg.head_warmup_steps`` the body's group (named
    ``"body"`` by `training.train.param_groups`) holds at 0 for those steps, then runs the same
    schedule over the steps left, while the head's group follows the whole schedule."""
    hold = min(cfg.head_warmup_steps, total_steps)

    def whole(step: int) -> float:
        return lr_factor(step, total_steps, cfg)

    def after_hold(step: int) -> float:
        return 0.0 if step < hold else lr_factor(step - hold, total_steps - hold, cfg)

    lambdas = [
        after_hold if hold and group.get("name") == "body" else whole for group in optimizer.param_groups
    ]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
