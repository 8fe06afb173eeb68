"""The MLLM half of MIND-Edit: load a supported VLM (+ checkpoint), refine and embed in one pass.

Public API::

    load_mllm(model_dir, *, dtype="auto", device=None, attn_implementation="sdpa",
              quantization=None, checkpoint_dir=None, max_side=384) -> MindEditMLLM
    MindEditMLLM.refine_and_embed(image, instruction, *, mask=None, options=PassOptions(...),
              should_stop=None, on_token=None, **option_overrides) -> MindEditResult  # .refined, .v_insight, .text
    MindEditMLLM.refine(...) -> RefinedPrompt;  MindEditMLLM.embed(image, instruction, *, mask=None) -> Tensor
    FAMILIES / family_for(model_type): LLaVA-OneVision, Qwen2.5-VL, Qwen3-VL
    GenerationInterrupted, MissingVisionHeadError, MLLMFolderError, UnsupportedTransformersError

Importing this package imports torch (not transformers: that happens in `load_mllm`).
"""

from .dtypes import DTYPE_NAMES, resolve_dtype
from .families import FAMILIES, MLLMFamily, UnsupportedTransformersError, family_for, family_of
from .hooks import capture_layer, find_decoder_layers
from .loader import load_mllm
from .loading import MLLMFolderError, check_mllm_folder, load_base_model
from .options import DEFAULT_MAX_NEW_TOKENS, PassOptions
from .protocol import GenerationInterrupted, MindEditMLLMLike, MissingVisionHeadError, require_vision_head
from .runner import MindEditMLLM, MindEditResult

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "DTYPE_NAMES",
    "FAMILIES",
    "GenerationInterrupted",
    "MLLMFamily",
    "MLLMFolderError",
    "MindEditMLLM",
    "MindEditMLLMLike",
    "MindEditResult",
    "MissingVisionHeadError",
    "PassOptions",
    "UnsupportedTransformersError",
    "capture_layer",
    "check_mllm_folder",
    "family_for",
    "family_of",
    "find_decoder_layers",
    "load_base_model",
    "load_mllm",
    "require_vision_head",
    "resolve_dtype",
]
