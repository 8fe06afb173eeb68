"""A local MLLM folder -> (transformers model, processor, family): the one loading path for the pack
and for training.

The folder is a Hugging Face layout (``config.json`` whose ``model_type`` names a supported family,
safetensors weights, tokenizer and processor files), downloaded once with ``hf download ...
--local-dir`` (see docs/MODELS.md), or a test fixture. Nothing is ever fetched from a hub: loading
is ``local_files_only``. transformers renamed ``torch_dtype`` to ``dtype`` in 4.56; `dtype_kwarg`
picks the name the installed version understands.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch

from ..safe_files import check_safetensors_folder
from .families import FAMILIES, MLLMFamily, UnsupportedFamilyError, family_for
from .folder_files import download_fix, processor_problem, shard_problems, tokenizer_problem
from .weight_report import check_loading_info

ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "auto")
_EXPECTED = (
    "config.json (model_type one of {types}), model*.safetensors (or pytorch_model*.bin), "
    "tokenizer files (tokenizer.json, or vocab.json + merges.txt, and tokenizer_config.json) and "
    "preprocessor_config.json"
)


class MLLMFolderError(FileNotFoundError):
    """The MLLM folder is missing, incomplete, or holds an unsupported model."""


def _expected() -> str:
    return _EXPECTED.format(types=", ".join(repr(t) for t in FAMILIES))


def _download_hint() -> str:
    return download_fix(None)


def check_mllm_folder(model_dir: str | Path) -> tuple[Path, MLLMFamily]:
    """Validate the folder before transformers sees it: ``(path, family)``, or an error that says what
    is missing or which model_types are supported."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise MLLMFolderError(
            f"MLLM folder not found: {path}. Expected a local model folder with {_expected()}. {_download_hint()}"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise MLLMFolderError(
            f"{path} is not a Hugging Face model folder: config.json is missing. Expected {_expected()}."
        )
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (ValueError, AttributeError) as exc:
        raise MLLMFolderError(f"{config_file} is not a valid config.json: {exc}.") from exc
    try:
        family = family_for(model_type, where=str(path))
    except UnsupportedFamilyError as exc:
        raise MLLMFolderError(str(exc)) from exc
    names = {p.name for p in path.iterdir()}
    problems = []
    if not any(
        n.endswith(".safetensors") or (n.startswith("pytorch_model") and n.endswith(".bin")) for n in names
    ):
        problems.append("no weights (model*.safetensors or pytorch_model*.bin)")
    else:
        problems.append(shard_problems(path, names))
    if not names & {"tokenizer.json", "tokenizer_config.json", "vocab.json"}:
        problems.append("no tokenizer files (tokenizer.json / tokenizer_config.json)")
    else:
        problems.append(tokenizer_problem(names))
    problems.append(processor_problem(path, names))
    problems = [p for p in problems if p]
    if problems:
        raise MLLMFolderError(
            f"{path} is an incomplete {family.display_name} folder: {'; '.join(problems)}. Expected "
            f"{_expected()}. {download_fix(family, path)}"
        )
    return path, family


def dtype_kwarg() -> str:
    """``dtype`` on transformers >= 4.56, ``torch_dtype`` before."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def check_attention(attn_implementation: str) -> None:
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ValueError(
            f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, got {attn_implementation!r}."
        )
    if attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ImportError(
            "attn_implementation='flash_attention_2' needs the flash-attn package, which is not installed: "
            "`pip install flash-attn` (CUDA), or use 'sdpa'."
        )


def load_processor(path: Path, family: MLLMFamily) -> Any:
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise MLLMFolderError(
            f"Could not load the processor of {path}: {type(exc).__name__}: {exc}. The folder needs "
            "preprocessor_config.json, the tokenizer files and a chat template; the video processor of "
            f"{family.display_name} also needs torchvision."
        ) from exc
    if (
        getattr(processor, "chat_template", None) is None
        and getattr(getattr(processor, "tokenizer", None), "chat_template", None) is None
    ):
        raise MLLMFolderError(f"{path} has no chat template (chat_template.json / chat_template.jinja).")
    return processor


def load_base_model(
    model_dir: str | Path,
    *,
    dtype: torch.dtype,
    attn_implementation: str = "sdpa",
    quantization_config: Any = None,
    device_map: Any = None,
) -> tuple[Any, Any, MLLMFamily]:
    """``(model, processor, family)`` from a local folder with transformers' own class for the family."""
    path, family = check_mllm_folder(model_dir)
    check_attention(attn_implementation)
    model_class = family.model_class_object()
    kwargs: dict[str, Any] = {dtype_kwarg(): dtype, "local_files_only": True}
    if attn_implementation != "auto":
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if device_map is not None:
        kwargs["device_map"] = device_map
    fix = download_fix(family, path)
    # a damaged weights file, or processor files that do not load, are named before the (slow) model load
    check_safetensors_folder(path, what="MLLM weights file", fix=fix)
    processor = load_processor(path, family)
    model, info = model_class.from_pretrained(str(path), output_loading_info=True, **kwargs)
    check_loading_info(model, info, path, fix=fix)  # missing weights would stay random
    return model, processor, family
