"""LLaVA-OneVision (``llava-hf/llava-onevision-qwen2-*-ov-hf``): Qwen2 language model + SigLIP tower.

Image budget: anyres tiling of 384 px tiles (729 tokens each) plus a base view; the pack resizes the
image to ``max_image_side`` first (384 px: one tile + base view). The chat template renders image
placeholders before the text whatever the content order, so the image stays first.
"""

from .base import MLLMFamily, Release

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
    releases=(
        Release(
            key="llava-0.5b",
            repo="llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
            label="0.5B",
            params="0.89 B",
            hidden_size=896,
            num_layers=24,
            download_size="1.8 GB",
            vram_bf16="~2 GB",
            vram_4bit="~1.2 GB",
            note="the MLLM for small GPUs",
        ),
        Release(
            key="llava-7b",
            repo="llava-hf/llava-onevision-qwen2-7b-ov-hf",
            label="7B",
            params="8.0 B",
            hidden_size=3584,
            num_layers=28,
            download_size="16 GB",
            vram_bf16="~15.5 GB",
            vram_4bit="~6 GB",
            note="the paper's MLLM",
        ),
    ),
    image_tokens=((384, 1485), (768, 3699), (1024, 7371)),
    tokens_per_image_note="729 per 384 px tile (anyres, up to 9 tiles) plus the base view",
    folder_note="use the '-hf' conversions (the original lmms-lab repos use another layout)",
)
