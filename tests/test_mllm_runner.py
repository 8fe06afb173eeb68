"""One pass for both outputs on the tiny LLaVA-OneVision: equality with separate passes, plain
``generate`` text, cancellation, progress, determinism, inputs, and the no-head error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mindedit_core.mllm import GenerationInterrupted, MissingVisionHeadError, find_decoder_layers

INSTRUCTION = "make the sky a sunset"


def test_one_pass_embedding_equals_separate_forward_and_head(tiny_mllm_plain, comfy_image, comfy_mask):
    mllm = tiny_mllm_plain
    result = mllm.refine_and_embed(comfy_image, INSTRUCTION, mask=comfy_mask, max_new_tokens=6)
    assert result.v_insight.shape == (1, 1024)
    # 1. the embedding-only call (a forward cut after layer m)
    torch.testing.assert_close(
        mllm.embed(comfy_image, INSTRUCTION, mask=comfy_mask), result.v_insight, atol=1e-5, rtol=0
    )
    # 2. an independent full forward with every hidden state, then the head
    inputs = mllm.prepare_inputs(comfy_image, INSTRUCTION, mask=comfy_mask)
    with torch.no_grad():
        out = mllm.model(**inputs, output_hidden_states=True)
        expected = mllm.head(out.hidden_states[mllm.layer], inputs["attention_mask"])
    torch.testing.assert_close(result.v_insight, expected, atol=1e-5, rtol=0)
    assert result.prompt_tokens == inputs["input_ids"].shape[1]


def test_text_is_identical_to_a_plain_generate(tiny_mllm_plain, comfy_image):
    mllm = tiny_mllm_plain
    result = mllm.refine_and_embed(comfy_image, INSTRUCTION, max_new_tokens=12)
    inputs = mllm.prepare_inputs(comfy_image, INSTRUCTION)
    tokenizer = mllm.processor.tokenizer
    with torch.no_grad():
        ids = mllm.model.generate(
            **inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    plain_text = tokenizer.decode(ids[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert result.text == plain_text
    assert result.new_tokens == ids.shape[1] - inputs["input_ids"].shape[1]
    assert mllm.refine(comfy_image, INSTRUCTION, max_new_tokens=12).raw == plain_text


def test_hooks_are_removed_after_each_call(tiny_mllm_plain, comfy_image):
    from mindedit_core.mllm.hooks import LayerCapture

    layers = find_decoder_layers(tiny_mllm_plain.model)

    def ours() -> int:
        return sum(isinstance(h, LayerCapture) for layer in layers for h in layer._forward_hooks.values())

    seen_inside = []
    tiny_mllm_plain.refine_and_embed(
        comfy_image, INSTRUCTION, max_new_tokens=2, on_token=lambda i, n: seen_inside.append(ours())
    )
    tiny_mllm_plain.embed(comfy_image, INSTRUCTION)
    assert seen_inside and all(count == 1 for count in seen_inside)  # exactly one hook while generating
    assert ours() == 0


def test_gibberish_answer_falls_back_visibly(tiny_mllm_plain, comfy_image):
    refined = tiny_mllm_plain.refine(comfy_image, INSTRUCTION, max_new_tokens=8)
    assert not refined.parsed  # random weights answer gibberish: the fallback must fire, visibly
    assert refined.positive == INSTRUCTION
    assert refined.warning and "fell back" in refined.warning


def test_should_stop_interrupts_between_tokens(tiny_mllm_plain, comfy_image):
    progress: list[tuple[int, int]] = []

    def on_token(i: int, total: int) -> None:
        progress.append((i, total))

    with pytest.raises(GenerationInterrupted, match="after 3 of 50 tokens"):
        tiny_mllm_plain.refine_and_embed(
            comfy_image,
            INSTRUCTION,
            max_new_tokens=50,
            should_stop=lambda: len(progress) >= 3,
            on_token=on_token,
        )
    assert progress == [(1, 50), (2, 50), (3, 50)]
    with pytest.raises(GenerationInterrupted, match="before it started"):
        tiny_mllm_plain.refine(comfy_image, INSTRUCTION, should_stop=lambda: True)


def test_progress_reaches_every_token(tiny_mllm_plain, comfy_image):
    seen: list[int] = []
    result = tiny_mllm_plain.refine_full(
        comfy_image, INSTRUCTION, max_new_tokens=5, on_token=lambda i, n: seen.append(i)
    )
    assert seen == list(range(1, result.new_tokens + 1))


def test_sampling_is_deterministic_with_a_seed(tiny_mllm_plain, comfy_image):
    before = torch.random.get_rng_state()
    runs = [
        tiny_mllm_plain.refine_full(comfy_image, INSTRUCTION, seed=7, do_sample=True, max_new_tokens=10).text
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is left alone


def test_input_forms_give_the_same_embedding(tiny_mllm_plain, comfy_image):
    mllm = tiny_mllm_plain
    reference = mllm.embed(comfy_image, INSTRUCTION)
    as_torch_hwc = torch.from_numpy(comfy_image[0])
    as_pil = Image.fromarray((np.clip(comfy_image[0], 0, 1) * 255 + 0.5).astype(np.uint8))
    torch.testing.assert_close(mllm.embed(as_torch_hwc, INSTRUCTION), reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(mllm.embed(as_pil, INSTRUCTION), reference, atol=1e-5, rtol=0)


def test_mask_is_shown_and_an_empty_mask_is_ignored(tiny_mllm_plain, comfy_image, comfy_mask):
    mllm = tiny_mllm_plain
    plain = mllm.embed(comfy_image, INSTRUCTION)
    masked = mllm.embed(comfy_image, INSTRUCTION, mask=torch.from_numpy(comfy_mask))
    empty = mllm.embed(comfy_image, INSTRUCTION, mask=np.zeros_like(comfy_mask))
    assert not torch.allclose(plain, masked, atol=1e-4)
    torch.testing.assert_close(empty, plain, atol=0, rtol=0)
    text = mllm.processor.tokenizer.decode(
        mllm.prepare_inputs(comfy_image, INSTRUCTION, mask=comfy_mask)["input_ids"][0]
    )
    assert "magenta" in text


def test_device_is_read_live_and_to_moves_model_and_head(tiny_mllm_plain):
    assert tiny_mllm_plain.device == torch.device("cpu")
    assert tiny_mllm_plain.to("cpu") is tiny_mllm_plain
    assert next(tiny_mllm_plain.head.parameters()).device == torch.device("cpu")
    modules = tiny_mllm_plain.torch_modules()
    assert modules["model"] is tiny_mllm_plain.model and modules["head"] is tiny_mllm_plain.head


def test_base_model_refines_but_asks_for_a_head_to_embed(tiny_mllm_base, comfy_image):
    refined = tiny_mllm_base.refine(comfy_image, INSTRUCTION, max_new_tokens=4)
    assert refined.positive.strip()
    for call in (tiny_mllm_base.embed, tiny_mllm_base.refine_and_embed):
        with pytest.raises(
            MissingVisionHeadError, match=r"python -m training\.train.*|models/mindedit"
        ) as info:
            call(comfy_image, INSTRUCTION)
        assert "models/mindedit" in str(info.value) and "training.train" in str(info.value)


def test_bf16_model_keeps_one_pass_equal_and_float32_embeddings(tiny_llava_dir, tiny_ckpt_plus, comfy_image):
    from mindedit_core.mllm import load_mllm

    mllm = load_mllm(tiny_llava_dir, device="cpu", dtype="bf16", checkpoint_dir=tiny_ckpt_plus)
    assert mllm.dtype == torch.bfloat16
    result = mllm.refine_and_embed(comfy_image, INSTRUCTION, max_new_tokens=3)
    assert result.v_insight.dtype == torch.float32 and result.v_insight.shape == (1, 257, 1280)
    torch.testing.assert_close(mllm.embed(comfy_image, INSTRUCTION), result.v_insight, atol=1e-5, rtol=0)
