"""The MLLM half of MIND-Edit: load LLaVA-OneVision (+ checkpoint), refine and embed in one pass.

Public API::

    load_mllm(model_dir, *, dtype="auto", device=None, attn_implementation="sdpa",
              quantization=None, checkpoint_dir=None, max_side=384) -> MindEditMLLM
    MindEditMLLM.refine_and_embed(image, instruction, *, mask=None, seed=0, max_new_tokens=160,
              should_stop=None, on_token=None) -> MindEditResult   # .refined, .v_insight, .text
    MindEditMLLM.refine(...) -> RefinedPrompt;  MindEditMLLM.embed(image, instruction, *, mask=None) -> Tensor
    GenerationInterrupted, MissingVisionHeadError, MLLMFolderError

Importing this package imports torch (not transformers: that happens in `load_mllm`).
"""

from .hooks import capture_layer, find_decoder_layers
from .loader import MLLMFolderError, check_llava_onevision_folder, load_mllm, resolve_dtype
from .runner import GenerationInterrupted, MindEditMLLM, MindEditResult, MissingVisionHeadError

__all__ = [
    "GenerationInterrupted",
    "MLLMFolderError",
    "MindEditMLLM",
    "MindEditResult",
    "MissingVisionHeadError",
    "capture_layer",
    "check_llava_onevision_folder",
    "find_decoder_layers",
    "load_mllm",
    "resolve_dtype",
]
