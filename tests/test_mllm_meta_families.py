"""The released Qwen2.5-VL, Qwen3-VL, Qwen3.5 and Gemma 4 shapes, built on the meta device (no weights, no memory): the
decoder layers, layer m, the head's width and the LoRA targets (language model only, never the
vision tower) are right at real sizes (Qwen3.5: hybrid linear/full attention; Gemma 4 E2B: layer m
before the KV-sharing layers)."""

from __future__ import annotations

import re

import pytest
import torch

from mindedit_core.checkpoint import base_model_info, lora_target_regex
from mindedit_core.mllm import family_of, find_decoder_layers


def _gemma_layer_types(n: int, every: int) -> list[str]:
    return ["full_attention" if (i + 1) % every == 0 else "sliding_attention" for i in range(n)]


_DELTANET_LORA = ("in_proj_qkv", "in_proj_z", "out_proj")  # Qwen3.5's LoRA-adapted DeltaNet projections

# From the public config.json files (text part; vision towers at their real depth and width).
REAL = {
    "Qwen2.5-VL-3B-Instruct": (
        "qwen2_5_vl",
        dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
             num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
        dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
             fullatt_block_indexes=[7, 15, 23, 31]),
    ),
    "Qwen3-VL-2B-Instruct": (
        "qwen3_vl",
        dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
             num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
        dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
             deepstack_visual_indexes=[5, 11, 17]),
    ),
    "Qwen3-VL-4B-Instruct": (
        "qwen3_vl",
        dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
             num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
        dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2560,
             deepstack_visual_indexes=[5, 11, 17]),
    ),
    "Qwen3.5-4B": (
        "qwen3_5",
        dict(hidden_size=2560, intermediate_size=9216, num_hidden_layers=32, num_attention_heads=16,
             num_key_value_heads=4, head_dim=256, linear_num_key_heads=16, linear_num_value_heads=32,
             linear_key_head_dim=128, linear_value_head_dim=128, vocab_size=248320, tie_word_embeddings=True),
        dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2560),
    ),
    "Qwen3.5-9B": (
        "qwen3_5",
        dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=32, num_attention_heads=16,
             num_key_value_heads=4, head_dim=256, linear_num_key_heads=16, linear_num_value_heads=32,
             linear_key_head_dim=128, linear_value_head_dim=128, vocab_size=248320, tie_word_embeddings=False),
        dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096),
    ),
    "gemma-4-E2B-it": (
        "gemma4",
        dict(hidden_size=1536, intermediate_size=6144, num_hidden_layers=35, num_attention_heads=8,
             num_key_value_heads=1, head_dim=256, global_head_dim=512, hidden_size_per_layer_input=256,
             vocab_size=262144, vocab_size_per_layer_input=262144, num_kv_shared_layers=20,
             sliding_window=512, layer_types=_gemma_layer_types(35, 5), use_double_wide_mlp=True,
             final_logit_softcapping=30.0, tie_word_embeddings=True),
        dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=16, num_attention_heads=12,
             num_key_value_heads=12, head_dim=64),
    ),
    "gemma-4-31B-it": (
        "gemma4",
        dict(hidden_size=5376, intermediate_size=21504, num_hidden_layers=60, num_attention_heads=32,
             num_key_value_heads=16, head_dim=256, global_head_dim=512, num_global_key_value_heads=4,
             attention_k_eq_v=True, hidden_size_per_layer_input=0, vocab_size=262144, sliding_window=1024,
             layer_types=_gemma_layer_types(60, 6), final_logit_softcapping=30.0, tie_word_embeddings=True),
        dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
             num_key_value_heads=16, head_dim=72, standardize=True),
    ),
}  # fmt: skip


def _meta_model(name: str):
    import transformers

    model_type, text, vision = REAL[name]
    config_cls, model_cls = {
        "qwen2_5_vl": ("Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration"),
        "qwen3_vl": ("Qwen3VLConfig", "Qwen3VLForConditionalGeneration"),
        "qwen3_5": ("Qwen3_5Config", "Qwen3_5ForConditionalGeneration"),
        "gemma4": ("Gemma4Config", "Gemma4ForConditionalGeneration"),
    }[model_type]
    config = getattr(transformers, config_cls)(
        text_config=text, vision_config=vision, tie_word_embeddings=text["tie_word_embeddings"]
    )
    with torch.device("meta"):
        return getattr(transformers, model_cls)(config)


@pytest.mark.parametrize(
    ("name", "hidden", "layers", "layer_m"),
    [
        ("Qwen2.5-VL-3B-Instruct", 2048, 36, 27),
        ("Qwen3-VL-2B-Instruct", 2048, 28, 21),
        ("Qwen3-VL-4B-Instruct", 2560, 36, 27),
        ("Qwen3.5-4B", 2560, 32, 24),
        ("Qwen3.5-9B", 4096, 32, 24),
        ("gemma-4-E2B-it", 1536, 35, 15),  # 3/4 of 35 is a KV-sharing layer: the last unshared one
        ("gemma-4-31B-it", 5376, 60, 45),
    ],
)
def test_real_shapes_layers_and_lora_targets(name, hidden, layers, layer_m):
    model = _meta_model(name)
    family = family_of(model)
    info = base_model_info(model, name=name)
    assert (info.family, info.hidden_size, info.num_layers) == (family.model_type, hidden, layers)
    decoder_layers = find_decoder_layers(model)
    assert len(decoder_layers) == layers and family.model_default_layer(model) == layer_m
    family.check_layer(model.config, layer_m)
    assert decoder_layers[layer_m - 1].mlp.down_proj.out_features == hidden  # the head's input width
    names = [n for n, _ in model.named_modules()]
    targets = [
        n for n in names if re.fullmatch(lora_target_regex(model), n)
    ]  # how peft matches a regex string
    # q, k, v, o where a layer has them (not the k, v of Gemma 4's KV-sharing layers nor the v of its 31B
    # full-attention layers), Qwen3.5's DeltaNet in/out projections, and gate, up, down everywhere
    expected = sum(
        sum(getattr(getattr(layer, "self_attn", None), f"{p}_proj", None) is not None for p in "qkvo")
        + sum(getattr(getattr(layer, "linear_attn", None), p, None) is not None for p in _DELTANET_LORA)
        + 3
        for layer in decoder_layers
    )
    assert len(targets) == expected >= layers * 3
    assert all(n.startswith("model.language_model.layers.") for n in targets)
    tower = family.vision_modules[0]
    vision_linears = [n for n in names if f".{tower}." in f".{n}" and n.endswith(("qkv", "proj", "_proj"))]
    assert vision_linears and not set(vision_linears) & set(targets)
