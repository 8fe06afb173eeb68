"""The MLLM half of MIND-Edit: load a supported VLM (+ checkpoint), refine and embed in one pass.

Public API::

    load_mllm(model_dir, *, dtype="auto", device=None, attn_implementation="sdpa",
              quantization=None, checkpoint_dir=None, max_side=384) -> MindEditMLLM
    MindEditMLLM.run(PassRequest(image, instruction, mask=None, outputs="both"|"prompts"|"embeds",
              options=PassOptions(...), should_stop=None, on_token=None)) -> PassResult  # .refined, .v_insight, .text
    shorthands: mllm.refine_and_embed(image, instruction, **request) -> PassResult; refine_full(...) ->
              PassResult; refine(...) -> RefinedPrompt; embed(...) -> Tensor  (request: mask=, options=,
              should_stop=, on_token=, or PassOptions overrides such as seed=, max_new_tokens=)
    MindEditMLLMLike: the protocol every implementation (local, remote, fakes) satisfies
    FAMILIES / family_for(model_type): every supported VLM family (one module each in families/)
    GenerationInterrupted, MissingVisionHeadError, MLLMFolderError, UnsupportedTransformersError

Importing this package imports torch (not transformers: that happens in `load_mllm`).
"""

from .dtypes import DTYPE_NAMES, resolve_dtype
from .families import FAMILIES, MLLMFamily, UnsupportedTransformersError, family_for, family_of
from .hooks import capture_layer, find_decoder_layers
from .loader import load_mllm
from .loading import MLLMFolderError, check_mllm_folder, load_base_model
from .options import DEFAULT_MAX_NEW_TOKENS, PassOptions
from .protocol import (
    PASS_OUTPUTS,
    GenerationInterrupted,
    MindEditMLLMLike,
    MissingVisionHeadError,
    PassCalls,
    PassRequest,
    PassResult,
    require_vision_head,
)
from .runner import MindEditMLLM, MindEditResult

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "DTYPE_NAMES",
    "PASS_OUTPUTS",
    "FAMILIES",
    "GenerationInterrupted",
    "MLLMFamily",
    "MLLMFolderError",
    "MindEditMLLM",
    "MindEditMLLMLike",
    "MindEditResult",
    "MissingVisionHeadError",
    "PassCalls",
    "PassOptions",
    "PassRequest",
    "PassResult",
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
