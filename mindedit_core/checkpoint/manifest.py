"""The MIND-Edit checkpoint manifest: what training exports and the loader reads (the LoRA half is
`mindedit_core.checkpoint.lora`).

Layout::

    <checkpoint>/
      mindedit.json              manifest (below)
      vision_head.safetensors    the head F_v (optional: absent for text-only variants)
      lora/                      peft LoRA adapter in peft's own save format (optional)

``mindedit.json``::

    {"format": "mindedit-checkpoint", "format_version": 1,
     "base_model": {"model_type": "llava_onevision", "hidden_size": 3584, "num_layers": 28,
                    "name": "llava-onevision-qwen2-7b-ov-hf", "family": "llava_onevision"},
     "layer": 21, "head": {"kind": "plus", "out_dim": 1280, "out_tokens": 257} | null,
     "prompt_version": "mindedit-refine-v1", "parts": {"lora": true, "vision_head": true},
     "variant": "joint" | "text_only" | "head_only" | "base", "created_with": {...}, "extra": {...}}

``family`` is the MLLM family (`mindedit_core.mllm.families`); manifests written before families
existed lack it and get it from ``model_type``. Variants were once spelled ``text-only`` /
``head-only``: such manifests still read (as ``text_only`` / ``head_only``).

The loader checks that the base model matches (family, hidden size and layer count; a name mismatch
only logs: folders get renamed) and that a LoRA adapter really loaded (`lora.verify_lora_loaded`).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..prompting import PROMPT_VERSION
from ..versions import library_versions
from .negative import save_negative_embeds

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "mindedit-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
MANIFEST_NAME = "mindedit.json"
HEAD_NAME = "vision_head.safetensors"
LORA_DIR = "lora"
VARIANTS = ("joint", "text_only", "head_only", "base")
_OLD_VARIANT_SPELLING = {"text-only": "text_only", "head-only": "head_only"}


class CheckpointError(ValueError):
    """A MIND-Edit checkpoint folder is missing, malformed, or unusable."""


class BaseModelMismatchError(CheckpointError):
    """The checkpoint was trained on a different base model than the one loaded."""


@dataclass(frozen=True)
class BaseModelInfo:
    """Identity of the base MLLM: enough to refuse a checkpoint made for another model."""

    model_type: str
    hidden_size: int
    num_layers: int
    name: str = ""
    family: str = ""

    def __post_init__(self) -> None:
        if not self.family:  # manifests from before families: the family is the model_type
            object.__setattr__(self, "family", self.model_type)

    @classmethod
    def from_manifest(cls, entry: dict) -> BaseModelInfo:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in entry.items() if k in known})

    def describe(self) -> str:
        """E.g. "Qwen2.5-VL 'Qwen2.5-VL-3B-Instruct' (hidden 2048, 36 layers)"."""
        label = family_label(self.family)
        named = f" {self.name!r}" if self.name else ""
        return f"{label}{named} (hidden {self.hidden_size}, {self.num_layers} layers)"


def family_label(family: str) -> str:
    """The family's display name (``qwen2_5_vl`` -> ``Qwen2.5-VL``); unknown keys are shown as they are."""
    from ..mllm.families import FAMILIES

    known = FAMILIES.get(family)
    return known.display_name if known is not None else (family or "an unknown model")


def normalize_variant(variant: str) -> str:
    """One spelling (``text_only``); the hyphenated one of older manifests is accepted."""
    return _OLD_VARIANT_SPELLING.get(variant, variant)


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    text = getter() if callable(getter) else getattr(config, "text_config", None)
    return text if text is not None else config


def base_model_info(model_or_config: Any, name: str = "") -> BaseModelInfo:
    """`BaseModelInfo` of a transformers model or config (LLaVA-OneVision: its text config's widths)."""
    config = getattr(model_or_config, "config", model_or_config)
    text = _text_config(config)
    if not name:
        name = Path(str(getattr(config, "_name_or_path", "") or "")).name
    from ..mllm.families import FAMILIES

    model_type = str(getattr(config, "model_type", ""))
    known = FAMILIES.get(model_type)
    hidden_size, num_layers = (
        known.text_dims(config) if known is not None else (int(text.hidden_size), int(text.num_hidden_layers))
    )
    return BaseModelInfo(
        model_type=model_type,
        hidden_size=hidden_size,
        num_layers=num_layers,
        name=name,
        family=model_type,
    )


@dataclass
class MindEditCheckpoint:
    """A parsed checkpoint folder (manifest read and validated; weights not loaded yet)."""

    path: Path
    manifest: dict = field(repr=False)

    @property
    def base(self) -> BaseModelInfo:
        return BaseModelInfo.from_manifest(self.manifest["base_model"])

    @property
    def layer(self) -> int | None:
        """The decoder layer the head reads; None when not recorded (allowed without a head)."""
        layer = self.manifest["layer"]
        return None if layer is None else int(layer)

    @property
    def has_lora(self) -> bool:
        return bool(self.manifest["parts"].get("lora"))

    @property
    def has_head(self) -> bool:
        return bool(self.manifest["parts"].get("vision_head"))

    @property
    def head_path(self) -> Path:
        return self.path / HEAD_NAME

    @property
    def lora_path(self) -> Path:
        return self.path / LORA_DIR

    @property
    def prompt_version(self) -> str:
        return str(self.manifest.get("prompt_version", ""))

    @property
    def variant(self) -> str:
        return normalize_variant(str(self.manifest.get("variant", "")))


def save_mindedit_checkpoint(
    out_dir: str | Path,
    *,
    base: BaseModelInfo | Any,
    head: Any = None,
    lora_model: Any = None,
    variant: str = "joint",
    prompt_version: str = PROMPT_VERSION,
    layer: int | None = None,
    extra: dict | None = None,
    overwrite: bool = False,
    negative_embeds: Any = None,
) -> Path:
    """Write a checkpoint folder (into a temp folder first, then renamed into place).

    ``base``: a `BaseModelInfo`, or a transformers model/config to read it from. ``head``: a
    `VisionHead` or None. ``lora_model``: a peft ``PeftModel`` (saved with its own
    ``save_pretrained``) or None. ``layer`` defaults to the head's layer (required without a head
    only if you want it recorded). The head's config gets ``base_model`` / ``prompt_version`` filled in.
    ``negative_embeds``: a plus head's blank-image embedding ``[1,257,1280]`` (`checkpoint.negative`).
    """
    out_dir = Path(out_dir)
    variant = normalize_variant(variant)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
    if head is None and lora_model is None:
        raise ValueError("A MIND-Edit checkpoint needs a vision head, a LoRA adapter, or both.")
    info = base if isinstance(base, BaseModelInfo) else base_model_info(base)
    if head is not None:
        if head.config.hidden_size != info.hidden_size:
            raise BaseModelMismatchError(
                f"The vision head reads hidden size {head.config.hidden_size}, but the base model "
                f"{info.describe()} has {info.hidden_size}."
            )
        if not 1 <= head.config.layer <= info.num_layers:
            raise ValueError(f"Head layer {head.config.layer} is outside 1..{info.num_layers}.")
        head.config.base_model = head.config.base_model or info.name
        head.config.prompt_version = prompt_version
        layer = head.config.layer
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists: pass overwrite=True or choose another folder.")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        if head is not None:
            head.save(tmp / HEAD_NAME)
        if lora_model is not None:
            lora_model.save_pretrained(str(tmp / LORA_DIR))
        if negative_embeds is not None:
            save_negative_embeds(tmp, negative_embeds)
        manifest = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "base_model": asdict(info),
            "layer": layer,
            "head": None
            if head is None
            else {
                "kind": head.config.kind,
                "out_dim": head.config.out_dim,
                "out_tokens": head.config.out_tokens,
                "pool": head.config.pool,  # the head's design (vision_head.py); absent = "prompt"
            },
            "prompt_version": prompt_version,
            "parts": {
                "lora": lora_model is not None,
                "vision_head": head is not None,
                "negative_embeds": negative_embeds is not None,
            },
            "variant": variant,
            "created_with": library_versions(),
            "extra": extra or {},
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def read_checkpoint(path: str | Path) -> MindEditCheckpoint:
    """Read and validate ``mindedit.json``; errors name the folder, the file and what to do."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(
            f"MIND-Edit checkpoint folder not found: {path}. Expected a folder with {MANIFEST_NAME}, "
            f"{HEAD_NAME} and/or {LORA_DIR}/ (put checkpoints under ComfyUI's models/mindedit/, or train "
            "one with `python -m training.train`)."
        )
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise CheckpointError(
            f"{path} is not a MIND-Edit checkpoint: {MANIFEST_NAME} is missing (found: "
            f"{sorted(p.name for p in path.iterdir())[:10]})."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise CheckpointError(f"{manifest_path} is not valid JSON: {exc}.") from exc
    if not isinstance(manifest, dict):
        raise CheckpointError(
            f"{manifest_path} holds a JSON {type(manifest).__name__}, not the manifest object written by "
            "save_mindedit_checkpoint: re-export the checkpoint (python -m training.train ... writes it)."
        )
    if manifest.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{manifest_path} has format {manifest.get('format')!r}, expected {CHECKPOINT_FORMAT!r}."
        )
    if int(manifest.get("format_version", 0)) > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{manifest_path} uses checkpoint format version {manifest['format_version']}, newer than this "
            f"pack understands ({CHECKPOINT_FORMAT_VERSION}): update ComfyUI-MIND-Edit."
        )
    for key in ("base_model", "layer", "parts"):
        if key not in manifest:
            raise CheckpointError(f"{manifest_path} lacks the {key!r} entry.")
    ckpt = MindEditCheckpoint(path=path, manifest=manifest)
    if ckpt.has_head and not ckpt.head_path.is_file():
        raise CheckpointError(f"{manifest_path} lists a vision head but {ckpt.head_path} is missing.")
    if ckpt.has_lora and not (ckpt.lora_path / "adapter_config.json").is_file():
        raise CheckpointError(
            f"{manifest_path} lists a LoRA adapter but {ckpt.lora_path}/adapter_config.json is missing."
        )
    if ckpt.prompt_version and ckpt.prompt_version != PROMPT_VERSION:
        log.warning(
            "MIND-Edit checkpoint %s was trained with prompt %s, this pack uses %s: refinements may be worse.",
            path,
            ckpt.prompt_version,
            PROMPT_VERSION,
        )
    return ckpt


def check_base_model(ckpt: MindEditCheckpoint, model_or_config: Any) -> None:
    """Raise `BaseModelMismatchError` unless the loaded model is of the checkpoint's family, width and
    depth; the message names both models."""
    have = base_model_info(model_or_config)
    want = ckpt.base
    problems = []
    if want.family and have.family and want.family != have.family:
        problems.append(f"family {family_label(want.family)} != {family_label(have.family)}")
    if want.hidden_size != have.hidden_size:
        problems.append(f"hidden size {want.hidden_size} != {have.hidden_size}")
    if want.num_layers != have.num_layers:
        problems.append(f"layer count {want.num_layers} != {have.num_layers}")
    if problems:
        what = (
            "head and adapter" if ckpt.has_head and ckpt.has_lora else "head" if ckpt.has_head else "adapter"
        )
        raise BaseModelMismatchError(
            f"MIND-Edit checkpoint {ckpt.path} ({what}) was trained on {want.describe()}, but the loaded MLLM "
            f"is {have.describe()}: {'; '.join(problems)}. Load the base model the checkpoint was trained on "
            f"({want.name or family_label(want.family)}), or pick a checkpoint made for "
            f"{have.name or family_label(have.family)}."
        )
    if want.name and have.name and want.name != have.name:
        log.info("Checkpoint base %r, loaded %r: same shape, assuming the same model.", want.name, have.name)


def load_head(ckpt: MindEditCheckpoint, *, device: Any = None):
    """The checkpoint's `VisionHead` (or None if it has none), checked against the manifest."""
    from ..vision_head import VisionHead

    if not ckpt.has_head:
        return None
    head = VisionHead.load(ckpt.head_path, device=device)
    if head.config.hidden_size != ckpt.base.hidden_size or head.config.layer != ckpt.layer:
        raise CheckpointError(
            f"{ckpt.head_path} (hidden {head.config.hidden_size}, layer {head.config.layer}) does not match "
            f"{ckpt.path / MANIFEST_NAME} (hidden {ckpt.base.hidden_size}, layer {ckpt.layer})."
        )
    collapsed = (ckpt.manifest.get("extra") or {}).get("collapse_warning")
    if collapsed:  # recorded by training's held-out check (training/input_dependence.py)
        log.warning("MIND-Edit checkpoint %s: %s", ckpt.path, collapsed)
    return head.eval()
