"""The released Qwen2.5-VL and Qwen3-VL shapes, built on the meta device (no weights, no memory): the
decoder layers, layer m, the head's width and the LoRA targets (language model only, never the
vision tower) are right at real sizes."""

from __future__ import annotations

import re

import pytest
import torch

from mindedit_core.checkpoint import base_model_info, lora_target_regex
from mindedit_core.mllm import family_of, find_decoder_layers
from mindedit_core.vision_head import default_layer

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
}  # fmt: skip


def _meta_model(name: str):
    import transformers

    model_type, text, vision = REAL[name]
    config_cls, model_cls = {
        "qwen2_5_vl": ("Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration"),
        "qwen3_vl": ("Qwen3VLConfig", "Qwen3VLForConditionalGeneration"),
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
    ],
)
def test_real_shapes_layers_and_lora_targets(name, hidden, layers, layer_m):
    model = _meta_model(name)
    family = family_of(model)
    info = base_model_info(model, name=name)
    assert (info.family, info.hidden_size, info.num_layers) == (family.model_type, hidden, layers)
    decoder_layers = find_decoder_layers(model)
    assert len(decoder_layers) == layers and default_layer(layers) == layer_m
    assert decoder_layers[0].self_attn.q_proj.in_features == hidden  # the head's input width
    names = [n for n, _ in model.named_modules()]
    targets = [
        n for n in names if re.fullmatch(lora_target_regex(model), n)
    ]  # how peft matches a regex string
    assert len(targets) == layers * 7
    assert all(n.startswith("model.language_model.layers.") for n in targets)
    tower = family.vision_modules[0]
    vision_linears = [n for n in names if f".{tower}." in f".{n}" and n.endswith(("qkv", "proj", "_proj"))]
    assert vision_linears and not set(vision_linears) & set(targets)
