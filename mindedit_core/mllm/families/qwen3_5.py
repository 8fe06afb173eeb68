"""Qwen3.5 (``Qwen/Qwen3.5-*``): natively multimodal hybrid model, Gated DeltaNet + gated attention.

The language model stacks three linear-attention (Gated DeltaNet) decoder layers for every
full-attention one; both kinds are ``model.language_model.layers`` entries whose output is the
residual stream, so the layer-m hook reads either kind (with 24 or 32 layers, layer m = 3/4 depth is
a linear-attention layer). The vision tower is Qwen3-VL's without DeepStack: one visual token per
32x32 pixels (patch 16, 2x2 merge) within the processor's pixel bounds; the pack resizes the image to
``max_image_side`` first. ``AutoProcessor`` gives Qwen3-VL's processor class for these folders.

The released models think before answering by default (the generation prompt opens ``<think>``);
MIND-Edit asks for the direct answer with the chat template's own switch, ``enable_thinking=False``,
at inference and in training alike. Content order as for Qwen3-VL: instruction, then image.
LoRA: the attention projections of the full-attention layers and every layer's MLP (the shared
target pattern); the DeltaNet projections are left frozen.
"""

from .base import MLLMFamily

QWEN3_5 = MLLMFamily(
    model_type="qwen3_5",
    display_name="Qwen3.5",
    model_class="Qwen3_5ForConditionalGeneration",
    processor_class="Qwen3VLProcessor",
    first_transformers="5.2.0",
    example_repo="Qwen/Qwen3.5-2B",
    image_input_keys=("pixel_values", "image_grid_thw"),
    image_batching="flat_patches",
    vision_modules=("visual",),
    decoder_layer_paths=("model.language_model.layers",),
    image_after_text=True,
    token_aligned_keys=("mm_token_type_ids",),
    tokens_per_image_note="one per 32x32 px (patch 16, 2x2 merge)",
    end_of_answer="<|im_end|>",
    chat_template_options=(("enable_thinking", False),),
)
