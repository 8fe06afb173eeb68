"""What an evaluation run rests on, and the check that it does not test on training data.

- `training_record` / `training_summary`: what a source's checkpoint was trained with (seed, steps,
  learning rate, dataset path and size, split manifest and its sha256, the ids trained on), read from
  the checkpoint manifest (``extra``) or, for a full fine-tuned ``model/`` folder, from the training
  output folder beside it (``train_config.json``, ``train_data.json``).
- `split_overlap` / `check_split_overlap`: the evaluated items the checkpoint was trained on. A run
  whose checkpoint trained on its test items is refused by ``generate`` / ``table2`` unless
  ``--allow-split-overlap`` is given; the report marks such runs in every table either way.
- `dataset_provenance`, `decoding_of`: the evaluated data and how the MLLM decoded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from training.data.synthetic import is_synthetic

ALL = "all"  # trained on every record of its dataset
HUMANEDIT_ROWS = 5751  # the full HumanEdit release (its one `train` split)
CHECKPOINT_MANIFEST = "mindedit.json"


class SplitOverlapError(ValueError):
    """A checkpoint was trained on items the evaluation would score."""


def training_record(source: dict | None) -> dict | None:
    """``{"train": config, "global_step", "data", "trained_ids"}`` of a source, or ``None`` when it
    has no training record (a bare base model, a checkpoint made elsewhere)."""
    if not source:
        return None
    checkpoint = source.get("checkpoint")
    if checkpoint and (Path(checkpoint) / CHECKPOINT_MANIFEST).is_file():
        extra = (
            json.loads((Path(checkpoint) / CHECKPOINT_MANIFEST).read_text(encoding="utf-8")).get("extra")
            or {}
        )
        if not extra.get("train"):
            return None
        return {
            "train": extra["train"],
            "global_step": extra.get("global_step"),
            "data": extra.get("data"),
            "trained_ids": extra.get("trained_ids"),
        }
    model = Path(source.get("mllm") or "")
    run = model.parent
    if model.name == "model" and (run / "train_config.json").is_file():  # full fine-tuning, no checkpoint
        data = {}
        if (run / "train_data.json").is_file():
            data = json.loads((run / "train_data.json").read_text(encoding="utf-8"))
        return {
            "train": json.loads((run / "train_config.json").read_text(encoding="utf-8")),
            "global_step": _last_step(run / "metrics.jsonl"),
            "data": data.get("data"),
            "trained_ids": data.get("trained_ids"),
        }
    return None


def _last_step(metrics: Path) -> int | None:
    if not metrics.is_file():
        return None
    lines = [line for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])["step"] if lines else None
    except (ValueError, KeyError):
        return None


def training_summary(source: dict | None) -> dict | None:
    """The training facts a report shows for a source (``None`` without a source)."""
    if not source:
        return None
    record = training_record(source)
    if record is None:
        return {"known": False, "note": "no training record (base model, or a checkpoint made elsewhere)"}
    train, data = record["train"], record.get("data") or {}
    return {
        "known": True,
        "variant": train.get("variant"),
        "finetune": train.get("finetune"),
        "seed": train.get("seed"),
        "steps": record.get("global_step"),
        "lr": train.get("lr"),
        "head_lr": train.get("head_lr"),
        "scheduler": train.get("scheduler"),
        "epochs": train.get("epochs"),
        "max_steps": train.get("max_steps"),
        "dataset": data.get("path") or train.get("data"),
        "dataset_format": data.get("format") or train.get("data_format"),
        "dataset_size": data.get("num_records"),
        "split": data.get("split") or train.get("split"),
        "split_sha256": data.get("split_sha256"),
        "subset": data.get("subset") or train.get("subset"),
        "num_trained": data.get("num_trained"),
        "dataset_synthetic": is_synthetic(data.get("path") or train.get("data")),
    }


def _trained_ids(record: dict) -> set[str] | str | None:
    """The ids trained on, `ALL`, or ``None`` when they cannot be known."""
    if record.get("trained_ids") is not None:
        return {str(i) for i in record["trained_ids"]}
    train = record["train"]
    split = (record.get("data") or {}).get("split") or train.get("split")
    if split in ("all", "none"):
        return ALL
    from training.data.split import SplitManifest, default_manifest_path

    path = (
        Path(split)
        if split
        else default_manifest_path(train.get("data_format", "humanedit"), train.get("data", ""))
    )
    if not path.is_file():
        return None
    return {str(i) for i in getattr(SplitManifest.load(path), train.get("subset") or "train")}


def split_overlap(
    source: dict | None, evaluated_ids: list[str], dataset_format: str, dataset_path: str
) -> dict | None:
    """How many of ``evaluated_ids`` the source's checkpoint trained on (``None``: none, or unknown)."""
    record = training_record(source)
    if record is None:
        return None
    train, data = record["train"], record.get("data") or {}
    if (data.get("format") or train.get("data_format")) != dataset_format:
        return None  # another dataset: its ids name other items
    trained = _trained_ids(record)
    evaluated = {str(i) for i in evaluated_ids}
    if trained == ALL:
        same_data = (
            Path(data.get("path") or train.get("data") or "").resolve() == Path(dataset_path).resolve()
        )
        if dataset_format == "jsonl" and not same_data:
            return None  # a JSONL dataset's ids are its own
        overlap, how = evaluated, "trained with split=all (every record, test records included)"
    elif trained is None:
        return None
    else:
        overlap = trained & evaluated
        split = data.get("split") or train.get("split")
        how = (
            f"trained with split=all on {len(trained)} records (test records included)"
            if split in ("all", "none")
            else f"trained on {len(trained)} records (split {split or 'of the dataset'})"
        )
    if not overlap:
        return None
    return {
        "checkpoint": source.get("checkpoint") or source.get("mllm"),
        "count": len(overlap),
        "of": len(evaluated),
        "how": how,
        "examples": sorted(overlap)[:5],
    }


def check_split_overlap(
    sources: dict, evaluated_ids: list[str], dataset_format: str, dataset_path: str, *, allow: bool
) -> dict:
    """``{role: overlap}`` for the sources (prompt / insight) that trained on evaluated items; raises
    `SplitOverlapError` unless ``allow``."""
    found = {}
    for role, source in sources.items():
        overlap = split_overlap(source, evaluated_ids, dataset_format, dataset_path)
        if overlap:
            found[role] = overlap
    if found and not allow:
        lines = [
            f"the {role} checkpoint {o['checkpoint']} was {o['how']}: {o['count']} of the {o['of']} items "
            f"evaluated here (e.g. {', '.join(o['examples'][:3])})"
            for role, o in found.items()
        ]
        raise SplitOverlapError(
            "Refusing to evaluate on training data: "
            + "; ".join(lines)
            + ". Evaluate a split the checkpoint did not train on (the test split of the manifest it was "
            "trained with), or pass --allow-split-overlap to run anyway (every report table then marks the run)."
        )
    return found


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dataset_provenance(selection: dict, num_records: int, num_selected: int) -> dict:
    """The evaluated data: path, format, size, split manifest (path, sha256, recorded id hash), split."""
    manifest = selection.get("split_manifest")
    out = {
        "path": selection.get("path"),
        "format": selection.get("format"),
        "num_records": num_records,
        "num_selected": num_selected,
        "split_manifest": manifest,
        "split": selection.get("split") if manifest else None,
        "synthetic": is_synthetic(selection.get("path")),
    }
    if manifest and Path(manifest).is_file():
        out["split_manifest_sha256"] = file_sha256(manifest)
        out["split_ids_sha256"] = json.loads(Path(manifest).read_text(encoding="utf-8")).get("ids_sha256")
    return out


def decoding_of(mllm, max_new_tokens: int | None) -> dict | None:
    """How the MLLM decoded (its default pass options, with this run's ``max_new_tokens``)."""
    if mllm is None:
        return None
    from mindedit_core.mllm.options import PassOptions

    options = getattr(mllm, "default_options", None) or PassOptions()
    if max_new_tokens:
        options = options.with_overrides(max_new_tokens=max_new_tokens)
    return {
        "mode": f"sampling (temperature {options.temperature})"
        if options.do_sample
        else "greedy (do_sample=False)",
        "max_new_tokens": options.max_new_tokens,
        "max_image_side": options.max_image_side,
        "seed": "per item (the item's seed)",
    }


def partial_copy_note(dataset: dict | None) -> str | None:
    """A note when a 'HumanEdit' dataset is not the full release (a partial copy or a fixture)."""
    if not dataset or dataset.get("format") != "humanedit":
        return None
    n = dataset.get("num_records")
    if n is not None and n != HUMANEDIT_ROWS:
        return f"{n} of HumanEdit's {HUMANEDIT_ROWS:,} rows"
    return None
