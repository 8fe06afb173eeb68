"""Qwen3-VL (``Qwen/Qwen3-VL-*-Instruct``): Qwen3 language model + ViT with DeepStack, dynamic resolution.

Image budget: one visual token per 32x32 pixels (patch 16, 2x2 merge) within the processor's pixel
bounds; the pack resizes the image to ``max_image_side`` first. DeepStack adds vision features from
several ViT blocks into the first decoder layers, so layer m already carries multi-level vision
features. Content order as for Qwen2.5-VL: instruction, then image.
"""

from .base import MLLMFamily, Release

QWEN3_VL = MLLMFamily(
    model_type="qwen3_vl",
    display_name="Qwen3-VL",
    model_class="Qwen3VLForConditionalGeneration",
    processor_class="Qwen3VLProcessor",
    first_transformers="4.57.0",
    example_repo="Qwen/Qwen3-VL-2B-Instruct",
    image_input_keys=("pixel_values", "image_grid_thw"),
    image_batching="flat_patches",
    vision_modules=("visual",),
    decoder_layer_paths=("model.language_model.layers",),
    image_after_text=True,
    token_aligned_keys=("mm_token_type_ids",),
    releases=(
        Release(
            key="qwen3-vl-2b",
            repo="Qwen/Qwen3-VL-2B-Instruct",
            label="2B Instruct",
            params="2.1 B",
            hidden_size=2048,
            num_layers=28,
            download_size="4.3 GB",
            vram_bf16="~4.5 GB",
            vram_4bit="~2 GB",
        ),
        Release(
            key="qwen3-vl-4b",
            repo="Qwen/Qwen3-VL-4B-Instruct",
            label="4B Instruct",
            params="4.4 B",
            hidden_size=2560,
            num_layers=36,
            download_size="8.9 GB",
            vram_bf16="~9 GB",
            vram_4bit="~3.5 GB",
        ),
        Release(
            key="qwen3-vl-8b",
            repo="Qwen/Qwen3-VL-8B-Instruct",
            label="8B Instruct",
            params="8.8 B",
            hidden_size=4096,
            num_layers=36,
            download_size="17.5 GB",
            vram_bf16="~17 GB",
            vram_4bit="~6.5 GB",
        ),
    ),
    image_tokens=((384, 144), (768, 576), (1024, 1024)),
    tokens_per_image_note="one per 32x32 px (patch 16, 2x2 merge)",
)
