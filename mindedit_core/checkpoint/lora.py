"""LoRA on the language model only, and the check that a checkpoint's adapter really loaded.

`lora_target_regex` is the one target pattern (training attaches it, the fixtures and the loader
rely on it): the family's (`MLLMFamily.lora_target_regex`: the language model's attention and MLP
projections, never the vision tower's).

Adapters written by newer transformers/peft can load as silent no-ops on older versions:
`verify_lora_loaded` turns that into an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..safe_files import CHECKPOINT_FIX, load_safetensors, load_torch_weights
from .manifest import CheckpointError, MindEditCheckpoint


class LoraNotLoadedError(CheckpointError):
    """The LoRA adapter in a checkpoint did not load (missing tensors or zero deltas)."""


def lora_target_regex(family: Any, layers: list[int] | None = None) -> str:
    """The peft ``target_modules`` regex of ``family`` (an `MLLMFamily`, or a model / config of one):
    every decoder layer, or only the given 0-based ``layers``."""
    from ..mllm.families import MLLMFamily, family_of

    if not isinstance(family, MLLMFamily):
        family = family_of(family)
    return family.lora_target_regex(layers)


def apply_lora(model: Any, ckpt: MindEditCheckpoint, *, merge: bool = True) -> Any:
    """Load the checkpoint's LoRA onto ``model``, verify it really loaded, and merge it by default.

    Returns the merged plain model (``merge=True``) or the peft ``PeftModel``. Raises
    `LoraNotLoadedError` when a tensor of the adapter file is missing from the model or differs, or when
    all its deltas are zero (an untrained or silently dropped adapter).
    """
    from peft import PeftModel

    _read_adapter_file(ckpt.lora_path)  # a damaged or unsafe adapter file is named before peft opens it
    try:
        peft_model = PeftModel.from_pretrained(model, str(ckpt.lora_path), is_trainable=False)
    except Exception as exc:
        raise LoraNotLoadedError(
            f"The LoRA adapter in {ckpt.lora_path} could not be loaded onto the MLLM: {type(exc).__name__}: "
            f"{exc}. Check that the checkpoint matches the base model and that peft is recent (>= 0.13)."
        ) from exc
    verify_lora_loaded(peft_model, ckpt.lora_path)
    if merge:
        return peft_model.merge_and_unload()
    return peft_model


def verify_lora_loaded(peft_model: Any, lora_path: Path) -> None:
    """Compare the adapter file with the weights the peft model holds now (see `apply_lora`)."""
    import torch
    from peft.utils import get_peft_model_state_dict

    file_state = _read_adapter_file(lora_path)
    live = get_peft_model_state_dict(peft_model)
    missing = [k for k in file_state if k not in live]
    differing = [
        k
        for k, v in file_state.items()
        if k in live and not torch.equal(live[k].detach().to("cpu", v.dtype), v)
    ]
    if missing or differing:
        raise LoraNotLoadedError(
            f"The LoRA adapter in {lora_path} did not load: {len(missing)} of {len(file_state)} tensors "
            f"have no place in the model (e.g. {missing[:3]}) and {len(differing)} differ "
            f"(e.g. {differing[:3]}). It was probably saved for another base model or another "
            "transformers/peft layout: re-export it with this environment's versions."
        )
    b_tensors = [v for k, v in file_state.items() if "lora_B" in k]
    if b_tensors and all(float(v.abs().max()) == 0.0 for v in b_tensors):
        raise LoraNotLoadedError(
            f"The LoRA adapter in {lora_path} has only zero deltas (every lora_B is 0): it was never "
            "trained. Export the trained adapter, or drop lora/ from the checkpoint."
        )


def _read_adapter_file(lora_path: Path) -> dict:
    st_file = lora_path / "adapter_model.safetensors"
    bin_file = lora_path / "adapter_model.bin"
    if st_file.is_file():
        return load_safetensors(st_file, what="LoRA adapter file", fix=CHECKPOINT_FIX)
    if bin_file.is_file():
        return load_torch_weights(bin_file, what="LoRA adapter file", fix=CHECKPOINT_FIX)
    raise LoraNotLoadedError(f"No adapter_model.safetensors or adapter_model.bin in {lora_path}.")
