"""Qwen3.5 (``Qwen/Qwen3.5-*``): natively multimodal hybrid model, Gated DeltaNet + gated attention.

The language model stacks three linear-attention (Gated DeltaNet) decoder layers for every
full-attention one; both kinds are ``model.language_model.layers`` entries whose output is the
residual stream, so the layer-m hook reads either kind (with 32 layers, layer m = 24 is a
full-attention layer; the tiny fixture's layer 3 a linear-attention one). The vision tower is
Qwen3-VL's without DeepStack: one visual token per 32x32 pixels (patch 16, 2x2 merge) within the
processor's pixel bounds; the pack resizes the image to ``max_image_side`` first. ``AutoProcessor``
gives Qwen3-VL's processor class for these folders (training names the family explicitly).

The released models think before answering by default (the generation prompt opens ``<think>``);
MIND-Edit asks for the direct answer with the chat template's own switch, ``enable_thinking=False``,
at inference and in training alike. Content order as for Qwen3-VL: instruction, then image.
LoRA: the attention projections of the full-attention layers, the DeltaNet's input and output
projections (``in_proj_qkv``, ``in_proj_z``, ``out_proj``; not its tiny gate projections) and every MLP.
"""

from .base import DEFAULT_LORA_MODULES, MLLMFamily, Release

QWEN3_5 = MLLMFamily(
    model_type="qwen3_5",
    display_name="Qwen3.5",
    model_class="Qwen3_5ForConditionalGeneration",
    processor_class="Qwen3VLProcessor",
    first_transformers="5.2.0",
    example_repo="Qwen/Qwen3.5-4B",
    image_input_keys=("pixel_values", "image_grid_thw"),
    image_batching="flat_patches",
    vision_modules=("visual",),
    decoder_layer_paths=("model.language_model.layers",),
    image_after_text=True,
    token_aligned_keys=("mm_token_type_ids",),
    lora_modules=rf"(?:{DEFAULT_LORA_MODULES}|linear_attn\.(?:in_proj_qkv|in_proj_z|out_proj))",
    chat_template_options=(("enable_thinking", False),),
    releases=(
        Release(
            key="qwen3.5-4b",
            repo="Qwen/Qwen3.5-4B",
            label="4B",
            params="4.5 B",
            hidden_size=2560,
            num_layers=32,
            download_size="9.1 GB",
            vram_bf16="~9 GB",
            vram_4bit="~3.5 GB",
        ),
        Release(
            key="qwen3.5-9b",
            repo="Qwen/Qwen3.5-9B",
            label="9B",
            params="9.4 B",
            hidden_size=4096,
            num_layers=32,
            download_size="18.8 GB",
            vram_bf16="~18 GB",
            vram_4bit="~7 GB",
        ),
    ),
    image_tokens=((384, 144), (768, 576), (1024, 1024)),
    tokens_per_image_note="one per 32x32 px (patch 16, 2x2 merge)",
)
