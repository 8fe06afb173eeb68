"""The tiny LLaVA-OneVision fixture has the real layout: config, tokenizer, processors, chat template."""

from __future__ import annotations

import json


def test_tiny_folder_has_the_real_layout(tiny_llava_dir):
    from transformers import AutoConfig, AutoProcessor

    from devkit.fixtures.llava_onevision import SPECIAL_TOKENS
    from mindedit_core.mllm import check_mllm_folder

    assert check_mllm_folder(tiny_llava_dir)[1].model_type == "llava_onevision"
    config = AutoConfig.from_pretrained(tiny_llava_dir)
    text = config.get_text_config()
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (
        64,
        4,
        4,
        2,
    )
    assert text.vocab_size % 64 == 0 and config.vision_aspect_ratio == "anyres_max_9"
    assert len(config.image_grid_pinpoints) == 36 and config.image_grid_pinpoints[-1] == [192, 192]
    processor = AutoProcessor.from_pretrained(tiny_llava_dir)
    assert type(processor).__name__ == "LlavaOnevisionProcessor"
    assert processor.video_processor is not None
    ids = processor.tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)
    assert ids == sorted(ids) and ids[0] >= 256  # appended after the byte-level vocabulary, in order
    assert config.image_token_id == ids[3]
    rendered = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert rendered == "<|im_start|>user <image>\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert json.loads((tiny_llava_dir / "config.json").read_text())["model_type"] == "llava_onevision"


def test_tiny_model_is_tiny(tiny_mllm_base):
    assert sum(p.numel() for p in tiny_mllm_base.model.parameters()) < 300_000
