"""LLaVA-OneVision (``llava-hf/llava-onevision-qwen2-*-ov-hf``): Qwen2 language model + SigLIP tower.

Image budget: anyres tiling of 384 px tiles (729 tokens each) plus a base view; the pack resizes the
image to ``max_image_side`` first (384 px: one tile + base view). The chat template renders image
placeholders before the text whatever the content order, so the image stays first.
"""

from .base import MLLMFamily

LLAVA_ONEVISION = MLLMFamily(
    model_type="llava_onevision",
    display_name="LLaVA-OneVision",
    model_class="LlavaOnevisionForConditionalGeneration",
    processor_class="LlavaOnevisionProcessor",
    first_transformers="4.45.0",
    example_repo="llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
    image_input_keys=("pixel_values", "image_sizes"),
    image_batching="padded_tiles",
    vision_modules=("vision_tower", "multi_modal_projector"),
    decoder_layer_paths=("model.language_model.layers", "language_model.model.layers"),
    image_after_text=False,
    tokens_per_image_note="729 per 384 px tile (anyres, up to 9 tiles) plus the base view",
)
