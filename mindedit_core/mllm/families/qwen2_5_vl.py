"""Qwen2.5-VL (``Qwen/Qwen2.5-VL-*-Instruct``): Qwen2.5 language model + windowed ViT, dynamic resolution.

Image budget: one visual token per 28x28 pixels (patch 14, 2x2 merge) within the processor's pixel
bounds (``min_pixels``/``max_pixels``); the pack resizes the image to ``max_image_side`` first, so
the count is about (H/28)(W/28). The chat template keeps the content order: the instruction comes
before the image, so the image tokens' hidden states (read by the vision head) see the instruction.
"""

from .base import MLLMFamily, Release

QWEN2_5_VL = MLLMFamily(
    model_type="qwen2_5_vl",
    display_name="Qwen2.5-VL",
    model_class="Qwen2_5_VLForConditionalGeneration",
    processor_class="Qwen2_5_VLProcessor",
    first_transformers="4.49.0",
    example_repo="Qwen/Qwen2.5-VL-3B-Instruct",
    image_input_keys=("pixel_values", "image_grid_thw"),
    image_batching="flat_patches",
    vision_modules=("visual",),
    decoder_layer_paths=("model.language_model.layers", "model.layers"),
    image_after_text=True,
    token_aligned_keys=("mm_token_type_ids",),
    releases=(
        Release(
            key="qwen2.5-vl-3b",
            repo="Qwen/Qwen2.5-VL-3B-Instruct",
            label="3B Instruct",
            params="3.8 B",
            hidden_size=2048,
            num_layers=36,
            download_size="7.5 GB",
            vram_bf16="~8 GB",
            vram_4bit="~3 GB",
        ),
        Release(
            key="qwen2.5-vl-7b",
            repo="Qwen/Qwen2.5-VL-7B-Instruct",
            label="7B Instruct",
            params="8.3 B",
            hidden_size=3584,
            num_layers=28,
            download_size="16.6 GB",
            vram_bf16="~16 GB",
            vram_4bit="~6.5 GB",
        ),
    ),
    image_tokens=((384, 196), (768, 729), (1024, 1369)),
    tokens_per_image_note="one per 28x28 px (patch 14, 2x2 merge)",
)
