"""Resumable training state: trainable weights, optimizer, scheduler, data position, RNG.

Only the *trainable* tensors are saved (LoRA + head: megabytes, not the 15 GB base model). Each state
is a folder ``state/step-<N>`` written into a temporary folder and renamed, so a kill during a save
leaves the previous state intact; the newest ``keep`` states are kept. RNG states (python, numpy,
torch CPU and CUDA) are saved per process (``rng-<rank>.pt``), so dropout masks after a resume are
the ones an uninterrupted run would have drawn.

Under DeepSpeed or FSDP the optimizer is sharded: `accelerate`'s own ``save_state``/``load_state``
is used for the weights/optimizer there (`save_training_state` / `restore_training_state`), with the
same progress/RNG files.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

STATE_DIR = "state"
_STEP_RE = re.compile(r"^step-(\d+)$")


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters plus the head's buffers (its output scale), by name, on the CPU."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {
        k: v.detach().to("cpu").clone()
        for k, v in model.state_dict().items()
        if k in names or k.startswith("head.")
    }


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_states(output_dir: str | Path) -> list[Path]:
    root = Path(output_dir) / STATE_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_state(output_dir: str | Path) -> Path | None:
    states = list_states(output_dir)
    return states[-1] if states else None


def begin_state_dir(output_dir: str | Path, step: int) -> Path:
    """A fresh temporary folder to write state ``step`` into (see `commit_state_dir`)."""
    root = Path(output_dir) / STATE_DIR
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-step-{step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def commit_state_dir(tmp: Path, step: int, *, keep: int) -> Path:
    final = tmp.parent / f"step-{step}"
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in list_states(tmp.parent.parent)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_local_state(folder: Path, model: nn.Module, optimizer, scheduler) -> None:
    """Weights + optimizer + scheduler of a non-sharded run (main process only)."""
    from safetensors.torch import save_file

    save_file(trainable_state(model), str(folder / "trainable.safetensors"))
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, folder / "optim.pt"
    )


def load_local_state(folder: Path, model: nn.Module, optimizer, scheduler) -> None:
    from safetensors.torch import load_file

    weights = load_file(str(folder / "trainable.safetensors"))
    expected = set(trainable_state(model))
    if set(weights) != expected:
        missing, extra = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise ValueError(
            f"Training state {folder} does not match this run's trainable parameters (missing "
            f"{missing[:3]}, unexpected {extra[:3]}): it was made with another variant, LoRA setting or "
            "model. Use another output_dir, or resume=never."
        )
    model.load_state_dict(weights, strict=False)
    blob = torch.load(folder / "optim.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])


def save_progress(folder: Path, progress: dict, *, rank: int) -> None:
    torch.save(rng_state(), folder / f"rng-{rank}.pt")
    if rank == 0:
        (folder / "progress.json").write_text(json.dumps(progress, indent=1))


def load_progress(folder: Path, *, rank: int) -> dict:
    progress = json.loads((folder / "progress.json").read_text())
    rng_file = folder / f"rng-{rank}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, map_location="cpu", weights_only=False))
    return progress


def state_to_resume(output_dir: str | Path, resume: str) -> Path | None:
    """The state folder a run starts from: the newest one (``auto``), none (``never``), or the one named."""
    if resume == "auto":
        return latest_state(output_dir)
    if resume == "never":
        return None
    return Path(resume)


def save_training_state(
    accelerator, joint, optimizer, scheduler, out: Path, *, sharded: bool, keep: int, progress: dict
) -> None:
    """Write ``state/step-<N>`` from every process (a collective call: all processes must enter it)."""
    step = progress["global_step"]
    tmp = Path(out) / STATE_DIR / f".tmp-step-{step}"
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
        commit_state_dir(tmp, step, keep=keep)
    accelerator.wait_for_everyone()


def restore_training_state(accelerator, joint, optimizer, scheduler, state: Path, *, sharded: bool) -> dict:
    """Load ``state`` into the prepared model/optimizer/scheduler; returns this process's progress."""
    if sharded:
        accelerator.load_state(str(state / "accelerate"))
        scheduler.load_state_dict(torch.load(state / "scheduler.pt", weights_only=False))
    else:
        load_local_state(state, accelerator.unwrap_model(joint), optimizer, scheduler)
    return load_progress(state, rank=accelerator.process_index)
