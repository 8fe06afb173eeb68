"""The real LLaVA-OneVision 0.5B and 7B architectures, built on the meta device (no weights, no
memory): the layer hook finds the right decoder layer and the head gets the right width."""

from __future__ import annotations

import pytest
import torch

from mindedit_core.checkpoint import base_model_info
from mindedit_core.mllm.hooks import capture_layer, find_decoder_layers
from mindedit_core.vision_head import VisionHead, VisionHeadConfig, default_layer

# Published sizes of llava-hf/llava-onevision-qwen2-{0.5b,7b}-ov-hf (Qwen2 text + SigLIP-so400m).
REAL = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=152000, tie_word_embeddings=True),
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152128, tie_word_embeddings=False),
}  # fmt: skip


def _meta_model(size: str):
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        Qwen2Config,
        SiglipVisionConfig,
    )

    text = Qwen2Config(**REAL[size])
    vision = SiglipVisionConfig(
        hidden_size=1152, intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16,
        image_size=384, patch_size=14, vision_use_head=False,
    )  # fmt: skip
    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=text, tie_word_embeddings=REAL[size]["tie_word_embeddings"]
    )
    with torch.device("meta"):
        return LlavaOnevisionForConditionalGeneration(config)


@pytest.mark.parametrize(
    ("size", "hidden", "layers", "layer_m"), [("0.5b", 896, 24, 18), ("7b", 3584, 28, 21)]
)
def test_head_attaches_to_the_right_layer_with_the_right_width(size, hidden, layers, layer_m):
    model = _meta_model(size)
    info = base_model_info(model)
    assert (info.hidden_size, info.num_layers) == (hidden, layers)
    decoder_layers = find_decoder_layers(model)
    assert len(decoder_layers) == layers
    assert default_layer(info.num_layers) == layer_m
    with torch.device("meta"):
        head = VisionHead(VisionHeadConfig.for_kind("plus", hidden_size=info.hidden_size, layer=layer_m))
    language_model = next(m for name, m in model.named_modules() if name.endswith("language_model"))
    assert language_model.layers is decoder_layers
    with capture_layer(model, layer_m) as capture:
        hooked = [i + 1 for i, layer in enumerate(decoder_layers) if capture in layer._forward_hooks.values()]
        assert hooked == [layer_m]
        # Run the language model alone on meta tensors (a prepared mask mapping: meta tensors cannot
        # be inspected by the mask builder). Older transformers cannot run rotary embeddings on meta
        # (autocast) or take a mask mapping; there the hooked decoder layer runs alone, on meta inputs.
        embeds = torch.empty(1, 7, hidden, device="meta")
        try:
            language_model(
                inputs_embeds=embeds,
                position_ids=torch.arange(7, device="meta")[None],
                attention_mask={"full_attention": None, "sliding_attention": None},
                use_cache=False,
            )
        except (RuntimeError, AttributeError, TypeError):  # versions differ in what runs on meta
            head_dim = hidden // model.config.text_config.num_attention_heads
            rotary = torch.empty(1, 7, head_dim, device="meta")
            decoder_layers[layer_m - 1](embeds, attention_mask=None, position_embeddings=(rotary, rotary))
    assert capture.hidden is not None and tuple(capture.hidden.shape) == (1, 7, hidden)
    v = head(capture.hidden, torch.ones(1, 7, dtype=torch.long, device="meta"))
    assert tuple(v.shape) == (1, 257, 1280)


def test_hook_refuses_a_layer_outside_the_model():
    model = _meta_model("0.5b")
    with pytest.raises(ValueError, match=r"outside the model's 1\.\.24"), capture_layer(model, 25):
        pass
