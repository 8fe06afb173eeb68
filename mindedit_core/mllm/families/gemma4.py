"""Gemma 4 (``google/gemma-4-*-it``): Gemma 4 language model + its own ViT with 3x3 pooling.

Image budget: the processor resizes every image (up or down, keeping the aspect ratio) to fill a
fixed soft-token budget (``max_soft_tokens``, 280 in the released processors; a square image fills
16 x 16 pooled 48 px patches = 256 tokens), so ``max_image_side`` bounds the detail the model sees,
not the token count. Patches are padded to the budget, so a batch stacks the image tensors.

The chat template keeps the content order (instruction, then image: the image's soft tokens attend
to the instruction), names the assistant ``model`` and closes every turn with ``<turn|>``, the token
training appends to the answer. Thinking is off unless asked for, as MIND-Edit wants. Decoder
layers alternate sliding-window and full attention; the small releases add per-layer input
embeddings and share KV projections in their last layers (E2B: 20 of 35): those layers have no k/v
projections (LoRA adapts q/o and the MLP there), and ``generate`` runs them on the last prompt
position only, so layer m is at most the last unshared layer (E2B: 15; the 31B model shares nothing:
3/4 of the depth as usual). transformers 5.5.2 fixed ``use_cache=False`` with KV sharing.
"""

from .base import MLLMFamily, Release

GEMMA4 = MLLMFamily(
    model_type="gemma4",
    display_name="Gemma 4",
    model_class="Gemma4ForConditionalGeneration",
    processor_class="Gemma4Processor",
    first_transformers="5.5.0",
    example_repo="google/gemma-4-E2B-it",
    image_input_keys=("pixel_values", "image_position_ids"),
    image_batching="stacked",
    vision_modules=("vision_tower", "embed_vision"),
    decoder_layer_paths=("model.language_model.layers",),
    image_after_text=True,
    token_aligned_keys=("mm_token_type_ids",),
    end_of_answer="<turn|>",
    turn_start="<|turn>",
    image_tokens_follow_side=False,
    kv_shared_layers_key="num_kv_shared_layers",
    releases=(
        Release(
            key="gemma4-e2b",
            repo="google/gemma-4-E2B-it",
            label="E2B it",
            params="5.1 B (2.75 B per-layer embeddings)",
            hidden_size=1536,
            num_layers=35,
            download_size="10.2 GB",
            vram_bf16="~10 GB",
            vram_4bit="~6.5 GB",
            note="layer m is the last before the KV-sharing layers",
            readable_layers=15,
        ),
        Release(
            key="gemma4-31b",
            repo="google/gemma-4-31B-it",
            label="31B it",
            params="31.3 B",
            hidden_size=5376,
            num_layers=60,
            download_size="62.5 GB",
            vram_bf16="~58 GB",
            vram_4bit="~17 GB",
        ),
    ),
    image_tokens=((384, 256), (768, 256), (1024, 256)),
    tokens_per_image_note="a fixed budget of up to 280 (image resized to fill it; 256 for a square)",
)
