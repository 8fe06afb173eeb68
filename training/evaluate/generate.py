"""Batch editing: run one method over a test split, one image per item, resumable and shardable.

Resuming: an item is done when ``images/<id>.png`` exists (written atomically, after its sidecar
``items/<id>.json``); a restarted run skips those without loading anything for them. A run folder
remembers what produced it (``run.json``); restarting with different settings is refused rather than
mixing two configurations in one folder.

Multi-GPU: start the same command with ``accelerate launch -m training.evaluate generate ...``; each
process takes items ``k, k + n, k + 2n, ...`` (``k`` its index, ``n`` the process count) and writes its
own manifest file, so processes never share a file. Seeds depend on the item id only, so the images do
not depend on the number of processes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mindedit_core.versions import library_versions

from ..shards import Shard, shard_from_env
from .conditioning import Conditioner, MethodSpec
from .pipelines import EditPipelines
from .run_files import (
    RUN_FILE,
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    failures_path,
    image_path,
    item_path,
    manifest_path,
    read_jsonl,
    safe_name,
)

log = logging.getLogger(__name__)

# run.json keys that must match when a run folder is resumed. Placement (device/dtype) may change, and
# so may the subset (limit/ids): items do not depend on it, so a run can be extended to more items.
IDENTITY_KEYS = ("method", "seed", "dataset", "diffusion", "sources")
PLACEMENT_KEYS = ("device", "dtype")
SUBSET_KEYS = ("limit", "ids")


class RunMismatchError(RuntimeError):
    """The output folder holds a run made with other settings."""


def shard_from_environment() -> tuple[Shard, str | None]:
    """This process's shard (and device, when launched by accelerate/torchrun), else the whole set.

    ``RANK``/``WORLD_SIZE`` (set by ``accelerate launch`` and ``torchrun``) are the authority for the
    shard; accelerate's state gives the device. If accelerate sees fewer processes than launched (it
    does on machines without GPUs), the environment wins, with a warning, so no two processes ever
    edit the same items.
    """
    env_shard = shard_from_env()
    rank, world = env_shard.index, env_shard.count
    device = None
    if world > 1 or "ACCELERATE_MIXED_PRECISION" in os.environ:
        try:
            from accelerate import PartialState

            state = PartialState()
            if state.num_processes == world:
                return Shard(state.process_index, state.num_processes), str(state.device)
            log.warning(
                "accelerate reports %d process(es) but WORLD_SIZE=%d: sharding by RANK/WORLD_SIZE.",
                state.num_processes,
                world,
            )
        except ImportError:
            log.warning("accelerate is not installed: sharding by RANK/WORLD_SIZE environment variables.")
        import torch

        if torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return Shard(rank, world), device


def item_seed(base_seed: int, item_id: str) -> int:
    """A fixed per-item seed: independent of order, sharding and resumption."""
    digest = hashlib.sha256(str(item_id).encode("utf-8")).hexdigest()
    return (int(base_seed) + int(digest[:8], 16)) % (2**31)


def _identity(run_info: dict) -> dict:
    ident = {k: run_info.get(k) for k in IDENTITY_KEYS}
    ident["sources"] = {  # where prompts and v_insight come from; not how the run was labelled
        role: {k: v for k, v in (source or {}).items() if k != "variant"} or None
        for role, source in (ident["sources"] or {}).items()
    }
    ident["diffusion"] = {k: v for k, v in (ident["diffusion"] or {}).items() if k not in PLACEMENT_KEYS}
    ident["dataset"] = {k: v for k, v in (ident["dataset"] or {}).items() if k not in SUBSET_KEYS}
    return ident


def prepare_run_folder(out_dir: Path, run_info: dict, *, is_main: bool = True) -> None:
    """Create the folder and ``run.json``, or check an existing one has the same identity."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RUN_FILE
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        old, new = _identity(previous), _identity(run_info)
        if old != new:
            changed = sorted(k for k in new if old.get(k) != new.get(k))
            raise RunMismatchError(
                f"{out_dir} already holds a run made with different {', '.join(changed)} "
                f"({path}). Use another --out folder, or delete that folder to start over."
            )
        if is_main and previous.get("dataset") != run_info.get("dataset"):
            # Same settings, another subset (e.g. a larger --limit): record the new selection for `score`.
            atomic_write_json(path, {**previous, "dataset": run_info["dataset"]})
        return
    if is_main:
        atomic_write_json(path, run_info)


def check_unique_names(records: Sequence) -> None:
    seen: dict[str, str] = {}
    for record in records:
        name = safe_name(record.id)
        if name in seen and seen[name] != record.id:
            raise ValueError(
                f"Item ids {seen[name]!r} and {record.id!r} map to the same file name {name!r}: "
                "ids must stay distinct after replacing characters outside [A-Za-z0-9._-]."
            )
        seen[name] = record.id


@dataclass
class GenerateStats:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _recover_manifest(out_dir: Path, shard: Shard, finished: list[str]) -> None:
    """Items whose image exists but whose manifest line was lost (killed in between) get it back."""
    listed = {row.get("id") for row in read_jsonl(manifest_path(out_dir, shard.index))}
    for item_id in finished:
        if item_id in listed:
            continue
        import json

        sidecar = item_path(out_dir, item_id)
        if sidecar.is_file():
            row = json.loads(sidecar.read_text(encoding="utf-8"))
            row["recovered"] = True
            append_jsonl(manifest_path(out_dir, shard.index), row)


def run_generate(
    records: Sequence,
    edit: EditPipelines,
    conditioner: Conditioner,
    out_dir: str | Path,
    *,
    run_info: dict,
    seed: int = 0,
    shard: Shard | None = None,
    stop_on_error: bool = False,
    on_item: Callable[[str, str], None] | None = None,
    progress: bool = False,
) -> GenerateStats:
    """Edit every record of this shard that has no image yet; returns what was done/skipped/failed.

    ``on_item(id, status)`` is called after each item (status ``done``/``skipped``/``failed``).
    ``progress``: a progress bar for the method (items, ETA) and one line per item on stderr.
    """
    out_dir = Path(out_dir)
    shard = shard or Shard()
    check_unique_names(records)
    prepare_run_folder(out_dir, run_info, is_main=shard.index == 0)
    stats = GenerateStats()
    mine = shard.take(records)
    already = [r.id for r in mine if image_path(out_dir, r.id).is_file()]
    _recover_manifest(out_dir, shard, already)
    already_set = set(already)
    bar = ItemProgress(len(mine), conditioner.method.name, enabled=progress, done=len(already_set))
    for position, record in enumerate(mine, start=1):
        if record.id in already_set:
            stats.skipped.append(record.id)
            if on_item:
                on_item(record.id, "skipped")
            continue
        started = time.perf_counter()
        try:
            row = _edit_one(record, edit, conditioner, out_dir, seed, run_info.get("sources") or {})
        except Exception as err:  # one bad item must not lose the others
            if stop_on_error:
                bar.close()
                raise
            log.error("item %s failed: %s: %s", record.id, type(err).__name__, err)
            append_jsonl(
                failures_path(out_dir, shard.index),
                {"id": record.id, "error": f"{type(err).__name__}: {err}", "time": time.time()},
            )
            stats.failed.append(record.id)
            bar.item(position, record.id, f"FAILED ({type(err).__name__}: {err})")
            if on_item:
                on_item(record.id, "failed")
            continue
        row["seconds"] = round(time.perf_counter() - started, 3)
        append_jsonl(manifest_path(out_dir, shard.index), row)
        stats.done.append(record.id)
        note = "; prompt FELL BACK to the raw instruction" if row["prompt_fallback"] else ""
        bar.item(position, record.id, f"done in {row['seconds']:.1f}s{note}")
        if on_item:
            on_item(record.id, "done")
    bar.close()
    return stats


class ItemProgress:
    """A tqdm bar over one method's items (count, rate, ETA) plus one line per finished item."""

    def __init__(self, total: int, name: str, *, enabled: bool, done: int = 0) -> None:
        self.total = total
        self.name = name
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=name, unit="item", dynamic_ncols=True)

    def item(self, position: int, item_id: str, status: str) -> None:
        line = f"[{self.name} {position}/{self.total}] {item_id}: {status}"
        log.info(line)
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _edit_one(
    record, edit: EditPipelines, conditioner: Conditioner, out_dir: Path, seed: int, sources: dict
) -> dict:
    source = record.load_source()
    mask = record.load_mask()
    this_seed = item_seed(seed, record.id)
    cond = conditioner(record, source, mask, this_seed)
    result = edit.edit(
        source,
        cond.positive,
        cond.negative,
        mask=mask,
        image_embeds=cond.image_embeds,
        seed=this_seed,
        negative_embeds=cond.negative_embeds,
    )
    image_embed = conditioner.method.image_embed if cond.image_embeds is not None else "none"
    row = {
        "id": record.id,
        "file": str(image_path(out_dir, record.id).relative_to(out_dir)),
        "edit_type": record.edit_type,
        "masked": mask is not None,
        "instruction": record.instruction,
        "positive": cond.positive,
        "negative": cond.negative,
        "prompt_origin": cond.prompt_origin,
        "prompt_fallback": cond.fell_back,
        "prompt_source": sources.get("prompt") if cond.prompt_origin == "mllm" else None,
        "image_embed": image_embed,
        "insight_source": sources.get("insight") if image_embed == "insight" else None,
        "refinement_warning": cond.warning,
        "seed": this_seed,
    }
    if image_embed == "insight":  # for the report's input-dependence check (insight_check.py)
        row["insight_vector"] = insight_vector(cond.image_embeds)
    atomic_write_json(item_path(out_dir, record.id), row)
    atomic_write_bytes(image_path(out_dir, record.id), _png_bytes(result))
    return row


def insight_vector(embeds) -> list[float]:
    """A compact copy of one item's ``v_insight`` for the report: the vector (plain) or its mean over
    tokens (plus), rounded to 5 decimals."""
    values = embeds.detach().float().cpu().reshape(-1, embeds.shape[-1]).mean(dim=0)
    return [round(float(v), 5) for v in values]


def make_run_info(
    method: MethodSpec,
    diffusion: dict,
    dataset: dict,
    seed: int,
    extra: dict | None = None,
    *,
    sources: dict | None = None,
) -> dict:
    """The ``run.json`` content: identity (method, seed, dataset, diffusion, the MLLM sources of the
    prompts and of ``v_insight``) + provenance."""
    return {
        "method": method.to_json(),
        "seed": seed,
        "dataset": dataset,
        "diffusion": diffusion,
        "sources": sources or {"prompt": None, "insight": None},
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
