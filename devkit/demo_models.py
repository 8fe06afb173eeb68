"""The demo's models: real ones from a ComfyUI ``models/`` folder, or the tiny generated ones.

A ``models/`` folder needs ``LLM/<VLM folder>`` and ``checkpoints/<sd15 file>``; the MIND-Edit
workflows also need ``mindedit/<checkpoint folder>`` and ``ipadapter/<file>``, which are optional
(public weights only: the refine-only workflow runs). ``$MINDEDIT_LLM``, ``$MINDEDIT_CHECKPOINT``,
``$MINDEDIT_IPADAPTER`` and ``$MINDEDIT_SD15`` pick among several.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Weight files the demo picks from a models/ folder; anything else there (ComfyUI's
# "put_checkpoints_here" placeholder, notes, configs) is not a model.
MODEL_FILE_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".bin", ".pt", ".pth")


class DemoError(RuntimeError):
    """A setup problem the user can fix; the message says what and how."""


@dataclass(frozen=True)
class DemoModels:
    """The model inputs of the workflows, as paths, and whether they are the tiny generated ones.
    ``mindedit_dir`` and ``ipadapter`` are None with public weights only (refine-only workflow)."""

    checkpoint: Path  # an SD1.5 checkpoint file
    llm_dir: Path  # a VLM folder
    mindedit_dir: Path | None  # a MIND-Edit checkpoint folder
    ipadapter: Path | None  # an IP-Adapter file
    tiny: bool
    # The SDXL workflows' checkpoint and ViT-H SDXL IP-Adapter (None: the demo runs no SDXL workflow).
    sdxl_checkpoint: Path | None = None
    sdxl_ipadapter: Path | None = None

    def comfy_models(self) -> dict[str, list[Path]]:
        """``{models/<folder>: [paths]}`` for `ComfyUIServer` (linked, never copied)."""
        folders = {
            "checkpoints": [self.checkpoint, self.sdxl_checkpoint],
            "LLM": [self.llm_dir],
            "mindedit": [self.mindedit_dir],
            "ipadapter": [self.ipadapter, self.sdxl_ipadapter],
        }
        found = {folder: [p for p in paths if p is not None] for folder, paths in folders.items()}
        return {folder: paths for folder, paths in found.items() if paths}

    def for_family(self, family: str) -> tuple[Path | None, Path | None]:
        """(checkpoint, IP-Adapter) for a workflow of ``family`` ("sd15" or "sdxl")."""
        if family == "sdxl":
            return self.sdxl_checkpoint, self.sdxl_ipadapter
        return self.checkpoint, self.ipadapter

    @property
    def mindedit_missing(self) -> str | None:
        """Why the MIND-Edit workflows cannot run (None when they can)."""
        missing = [
            what
            for what, path in (
                ("a MIND-Edit checkpoint in models/mindedit", self.mindedit_dir),
                ("an IP-Adapter file in models/ipadapter", self.ipadapter),
            )
            if path is None
        ]
        return " and ".join(missing) or None


def tiny_models(cache_root: Path | None = None, *, sdxl: bool = False) -> DemoModels:
    """Generate (once, cached) the tiny SD1.5 checkpoint, LLaVA-OneVision + MIND-Edit checkpoint and
    an IP-Adapter whose site widths match the tiny UNet; with ``sdxl`` also the tiny SDXL checkpoint
    (~2.2 GiB: SDXL's real text encoders) and a tiny ip-adapter_sdxl_vit-h."""
    from devkit.fixtures import cache_root as default_cache_root
    from devkit.fixtures.ipadapter_files import ipadapter_file
    from devkit.fixtures.llava_onevision import tiny_llava_onevision, tiny_mindedit_checkpoint
    from devkit.fixtures.sd15 import attn2_sites, tiny_sd15_checkpoint

    cache = Path(cache_root) if cache_root else default_cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    widths = [site.width for site in attn2_sites("sites16")]
    sdxl_checkpoint = sdxl_ipadapter = None
    if sdxl:
        from devkit.fixtures.ipadapter_files import sdxl_ipadapter_file
        from devkit.fixtures.sdxl import tiny_sdxl_checkpoint

        sdxl_checkpoint = tiny_sdxl_checkpoint(cache, "sites70", seed=0)
        sdxl_ipadapter = sdxl_ipadapter_file(cache, "plain")
    return DemoModels(
        checkpoint=tiny_sd15_checkpoint(cache, "sites16", seed=0),
        llm_dir=tiny_llava_onevision(cache),
        mindedit_dir=tiny_mindedit_checkpoint(cache, kind="plain"),
        ipadapter=ipadapter_file(cache, "plain", site_widths=widths),
        tiny=True,
        sdxl_checkpoint=sdxl_checkpoint,
        sdxl_ipadapter=sdxl_ipadapter,
    )


def _pick(
    folder: Path,
    what: str,
    env: str,
    *,
    dirs: bool,
    marker: str | None = None,
    optional: bool = False,
) -> Path | None:
    """One entry of ``folder``: the one named by ``$env``, else the only / first candidate.
    ``optional``: None when the folder is missing or holds nothing usable (and ``$env`` is unset)."""
    wanted = os.environ.get(env)
    if optional and not wanted and not _candidates(folder, dirs, marker):
        return None
    if not folder.is_dir():
        raise DemoError(
            f"{what}: the folder {folder} does not exist. Create it and put the {what} there (docs/MODELS.md)."
        )
    if wanted:
        path = folder / wanted
        if not path.exists():
            raise DemoError(f"{what}: ${env}={wanted!r} but {path} does not exist.")
        return path
    candidates = _candidates(folder, dirs, marker)
    if not candidates:
        expected = (
            f"a folder with {marker}" if dirs and marker else f"a {' / '.join(MODEL_FILE_SUFFIXES)} file"
        )
        raise DemoError(f"{what}: nothing usable in {folder} (expected {expected}; see docs/MODELS.md).")
    if len(candidates) > 1:
        print(f"[demo] {what}: several in {folder}, using {candidates[0].name} (set ${env} to choose)")
    return candidates[0]


def _candidates(folder: Path, dirs: bool, marker: str | None) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".")
        and (
            p.is_dir() and (marker is None or (p / marker).is_file())
            if dirs
            else p.is_file() and p.suffix.lower() in MODEL_FILE_SUFFIXES
        )
    )


def configured_models(models_dir: Path) -> DemoModels:
    """Real models from a ComfyUI ``models/`` folder (``$MINDEDIT_MODELS_DIR``)."""
    models_dir = Path(models_dir).expanduser().resolve()
    return DemoModels(
        checkpoint=_pick(
            models_dir / "checkpoints",
            "SD1.5 checkpoint",
            "MINDEDIT_SD15",
            dirs=False,
        ),
        llm_dir=_pick(
            models_dir / "LLM",
            "VLM folder",
            "MINDEDIT_LLM",
            dirs=True,
            marker="config.json",
        ),
        mindedit_dir=_pick(
            models_dir / "mindedit",
            "MIND-Edit checkpoint",
            "MINDEDIT_CHECKPOINT",
            dirs=True,
            marker="mindedit.json",
            optional=True,
        ),
        ipadapter=_pick(
            models_dir / "ipadapter",
            "IP-Adapter file",
            "MINDEDIT_IPADAPTER",
            dirs=False,
            optional=True,
        ),
        tiny=False,
    )
