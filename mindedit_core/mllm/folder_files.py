"""What an MLLM folder must hold besides ``config.json``, checked before anything is loaded.

Each check returns what is missing (a phrase for the folder error) or None, from the file names
alone (plus a glance at ``processor_config.json``), in microseconds:

- `tokenizer_problem`: ``tokenizer.json``, or the ``vocab.json`` + ``merges.txt`` pair it is built
  from. Without them transformers builds a 5-token tokenizer from ``tokenizer_config.json`` and the
  pass fails later with "Image features and image tokens do not match".
- `processor_problem`: the image processor's settings, in ``preprocessor_config.json`` (hub repos) or
  inside ``processor_config.json`` (what transformers >= 5 writes). Hub LLaVA-OneVision repos also
  carry a ``processor_config.json`` *without* them, which must not count.
- `shard_problems`: every ``model-0000i-of-0000n.safetensors`` shard and its index. transformers
  reports a missing last shard + index as "no file named model.safetensors".

`download_fix` is the one fix every folder error ends with: the family's own repo, from the family
table (the release whose size matches the folder's config, else `MLLMFamily.example_repo`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .families import FAMILIES, MLLMFamily

_SHARD_RE = re.compile(r"^(?P<prefix>.+)-(?P<index>\d+)-of-(?P<total>\d+)\.(?P<ext>safetensors|bin)$")


def release_repo(family: MLLMFamily, path: str | Path | None = None) -> str:
    """The repo of the family's release whose text model matches the folder's ``config.json`` (hidden
    size and layer count), else the family's example repo."""
    if path is not None:
        try:
            config = json.loads((Path(path) / "config.json").read_text())
        except (OSError, ValueError):
            config = None
        if isinstance(config, dict):
            text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
            shape = tuple(text.get(k, config.get(k)) for k in ("hidden_size", "num_hidden_layers"))
            for release in family.releases:
                if shape == (release.hidden_size, release.num_layers):
                    return release.repo
    return family.example_repo


def download_fix(family: MLLMFamily | None, path: str | Path | None = None) -> str:
    """How to get a complete folder: the family's repo for this folder's size (every family's example
    when the family is unknown)."""
    if family is None:
        repos = ", ".join(f.example_repo for f in FAMILIES.values())
        return (
            f"Download a supported model folder (e.g. one of {repos}) with `hf download <repo> --local-dir "
            "<ComfyUI>/models/LLM/<name>` (docs/MODELS.md lists every file and size)."
        )
    repo = release_repo(family, path)
    target = path if path is not None else f"<ComfyUI>/models/LLM/{repo.split('/')[-1]}"
    return (
        f"Download the {family.display_name} folder again: `hf download {repo} --local-dir {target}` "
        "(docs/MODELS.md lists every file and size)."
    )


def tokenizer_problem(names: set[str]) -> str | None:
    if "tokenizer.json" in names or {"vocab.json", "merges.txt"} <= names:
        return None
    present = sorted(names & {"tokenizer_config.json", "vocab.json", "merges.txt"})
    has = f" (it has only {', '.join(present)})" if present else ""
    return f"no tokenizer: tokenizer.json is missing{has}"


def processor_problem(path: Path, names: set[str]) -> str | None:
    if "preprocessor_config.json" in names:
        return None
    if "processor_config.json" in names:
        try:
            settings = json.loads((path / "processor_config.json").read_text())
        except (OSError, ValueError):
            settings = None
        if isinstance(settings, dict) and isinstance(settings.get("image_processor"), dict):
            return None
        return (
            "no image processor settings: preprocessor_config.json is missing (processor_config.json "
            "does not hold them)"
        )
    return "no processor files (preprocessor_config.json)"


def shard_problems(path: Path, names: set[str]) -> str | None:
    """Missing shards or shard index of a sharded checkpoint (``model-00001-of-00002.safetensors``)."""
    groups: dict[tuple[str, str, str], set[int]] = {}
    for name in names:
        found = _SHARD_RE.match(name)
        if found:
            key = (found["prefix"], found["total"], found["ext"])
            groups.setdefault(key, set()).add(int(found["index"]))
    missing: list[str] = []
    for (prefix, total, ext), present in sorted(groups.items()):
        width = len(total)
        missing += [
            f"{prefix}-{i:0{width}d}-of-{total}.{ext}" for i in range(1, int(total) + 1) if i not in present
        ]
        if (
            f"{prefix}.{ext}.index.json" not in names
        ):  # model.safetensors.index.json, pytorch_model.bin.index.json
            missing.append(f"{prefix}.{ext}.index.json")
    if not missing:
        return None
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return f"the sharded weights are incomplete: {shown} missing"
