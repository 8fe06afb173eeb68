"""Cached CLIP target embeddings on disk: a folder of safetensors shards + ``targets.json``.

Each shard holds, for a batch of records, ``plain::<id>`` (``image_embeds``, ``[dim]``) and/or
``plus::<id>`` (penultimate hidden states, ``[tokens, dim]``). Shards are written whole (temporary
file, then rename), so a killed `build_targets` run leaves only complete shards and resumes by
skipping the ids they hold. Reading is lazy (``safe_open``): ~3.4 GB of plus targets for HumanEdit
never have to sit in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch

MANIFEST_NAME = "targets.json"
SHARD_GLOB = "shard-*.safetensors"
UNCONDITIONAL_NAME = "unconditional.safetensors"  # the encoder's blank-image output (plus), see build_targets


def target_key(kind: str, record_id: str) -> str:
    return f"{kind}::{record_id}"


class TargetStore:
    """Read access to a targets folder written by `training.build_targets`."""

    def __init__(self, folder: str | Path) -> None:
        from safetensors import safe_open

        self.folder = Path(folder)
        manifest = self.folder / MANIFEST_NAME
        if not manifest.is_file():
            raise FileNotFoundError(
                f"{self.folder} holds no CLIP targets ({MANIFEST_NAME} missing). Build them with "
                "`python -m training.build_targets --data ... --clip <CLIP ViT-H/14 folder> --out "
                f"{self.folder}`."
            )
        self.manifest: dict = json.loads(manifest.read_text(encoding="utf-8"))
        self._where: dict[str, object] = {}
        self._handles = []
        for shard in sorted(self.folder.glob(SHARD_GLOB)):
            handle = safe_open(str(shard), framework="pt")
            self._handles.append(handle)
            for key in handle.keys():  # noqa: SIM118 (safe_open handles are not mappings)
                self._where[key] = handle

    @property
    def kinds(self) -> list[str]:
        return list(self.manifest.get("kinds", []))

    def ids(self, kind: str) -> set[str]:
        prefix = f"{kind}::"
        return {k[len(prefix) :] for k in self._where if k.startswith(prefix)}

    def has(self, record_id: str, kind: str) -> bool:
        return target_key(kind, record_id) in self._where

    def get(self, record_id: str, kind: str) -> torch.Tensor:
        key = target_key(kind, record_id)
        handle = self._where.get(key)
        if handle is None:
            have = ", ".join(self.kinds) or "none"
            raise KeyError(
                f"No {kind} CLIP target for record {record_id!r} in {self.folder} (kinds built: {have}). "
                "Run `python -m training.build_targets` on the same data (it resumes) with "
                f"--kinds {kind}."
            )
        return handle.get_tensor(key).float()

    def stack(self, record_ids: Iterable[str], kind: str) -> torch.Tensor:
        return torch.stack([self.get(i, kind) for i in record_ids])

    def unconditional(self, kind: str) -> torch.Tensor | None:
        """The encoder's blank-image output for ``kind`` (``[1,257,1280]`` for plus), or None: plain
        adapters use zeros, and targets built before it was recorded have none."""
        from safetensors.torch import load_file

        path = self.folder / UNCONDITIONAL_NAME
        if not path.is_file():
            return None
        return load_file(str(path)).get(kind)

    def sample_shape(self, kind: str) -> tuple[int, ...]:
        return tuple(self.manifest["shapes"][kind])
