"""Every supported family (LLaVA-OneVision, Qwen2.5-VL, Qwen3-VL, Qwen3.5, Gemma 4) on its tiny
real-architecture fixture: folder check, from_pretrained round trip, messages, image budget, the layer
hook on every decoder layer kind, the one pass, the parser's fallback, LoRA targets, version and family
refusals."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mindedit_core.mllm import FAMILIES, MLLMFolderError, check_mllm_folder, family_for, load_mllm

_DELTANET_LORA = ("in_proj_qkv", "in_proj_z", "out_proj")  # Qwen3.5's LoRA-adapted DeltaNet projections
INSTRUCTION = "make the sky a sunset"


def test_each_fixture_has_its_family_layout(family_dir):
    from transformers import AutoConfig, AutoProcessor

    model_type, folder = family_dir
    path, family = check_mllm_folder(folder)
    assert family.model_type == model_type == json.loads((path / "config.json").read_text())["model_type"]
    config = AutoConfig.from_pretrained(folder)
    text = config.get_text_config()
    assert (text.hidden_size, text.num_hidden_layers) == (64, 4)
    processor = AutoProcessor.from_pretrained(folder)
    assert type(processor).__name__ == family.processor_class
    assert processor.video_processor is not None
    if model_type in ("qwen2_5_vl", "qwen3_vl"):
        from devkit.fixtures.qwen_vl import QWEN2_5_VL_SPECIAL_TOKENS, QWEN3_VL_SPECIAL_TOKENS

        tokens = QWEN3_VL_SPECIAL_TOKENS if model_type == "qwen3_vl" else QWEN2_5_VL_SPECIAL_TOKENS
        ids = processor.tokenizer.convert_tokens_to_ids(tokens)
        assert ids == sorted(ids) and ids[0] >= 256  # appended after the byte-level vocabulary, in order
        assert config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        assert config.vision_start_token_id == processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")
        patch = 16 if model_type == "qwen3_vl" else 14
        assert (processor.image_processor.patch_size, processor.image_processor.merge_size) == (patch, 2)
        rendered = processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image"}]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        user = "<|im_start|>user\nhi<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n"
        system = (
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            if model_type == "qwen2_5_vl"
            else ""
        )
        assert rendered == system + user + "<|im_start|>assistant\n"


def test_qwen3_5_fixture_has_the_hybrid_stack_and_the_thinking_switch(tiny_qwen3_5_dir):
    from transformers import AutoConfig, AutoProcessor

    from devkit.fixtures.qwen3_5 import QWEN3_5_SPECIAL_TOKENS
    from mindedit_core.mllm import FAMILIES

    config = AutoConfig.from_pretrained(tiny_qwen3_5_dir)
    assert config.text_config.layer_types == ["linear_attention"] * 3 + ["full_attention"]
    processor = AutoProcessor.from_pretrained(tiny_qwen3_5_dir)
    ids = processor.tokenizer.convert_tokens_to_ids(QWEN3_5_SPECIAL_TOKENS)
    assert ids == sorted(ids) and ids[0] >= 256
    assert config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert (processor.image_processor.patch_size, processor.image_processor.merge_size) == (16, 2)
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image"}]}]
    user = (
        "<|im_start|>user\nhi<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n"
    )
    thinking = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert thinking == user + "<think>\n"  # the released models think by default
    # the family asks for the direct answer (inference and training render through it)
    assert FAMILIES["qwen3_5"].render_prompt(processor, messages) == user + "<think>\n\n</think>\n\n"


def test_gemma4_fixture_has_the_real_tokens_template_and_budget(tiny_gemma4_dir):
    from PIL import Image
    from transformers import AutoConfig, AutoProcessor

    from devkit.fixtures.gemma4 import GEMMA4_CONTROL_TOKENS, GEMMA4_LEADING_TOKENS, GEMMA4_MULTIMODAL_TOKENS
    from mindedit_core.mllm import FAMILIES

    config = AutoConfig.from_pretrained(tiny_gemma4_dir)
    processor = AutoProcessor.from_pretrained(tiny_gemma4_dir)
    tokenizer = processor.tokenizer
    assert tokenizer.convert_tokens_to_ids(GEMMA4_LEADING_TOKENS) == [0, 1, 2, 3, 4]
    control = tokenizer.convert_tokens_to_ids(GEMMA4_CONTROL_TOKENS)
    multimodal = tokenizer.convert_tokens_to_ids(GEMMA4_MULTIMODAL_TOKENS)
    assert control == sorted(control) and multimodal == sorted(multimodal) and max(control) < min(multimodal)
    assert (config.image_token_id, config.boi_token_id) == tuple(
        tokenizer.convert_tokens_to_ids(["<|image|>", "<|image>"])
    )
    assert config.text_config.layer_types[-1] == "full_attention" and config.text_config.num_kv_shared_layers
    messages = FAMILIES["gemma4"].messages("hi", with_mask=False)
    rendered = FAMILIES["gemma4"].render_prompt(processor, messages)
    assert rendered.startswith("<bos><|turn>system\n") and rendered.endswith(
        "<|image|><turn|>\n<|turn>model\n"
    )
    assert "<|turn>user\n" in rendered and "<|think|>" not in rendered
    # every image is resized to fill the 280-soft-token budget, whatever its size
    counts = {
        side: int(
            (
                processor(images=Image.new("RGB", (side, side)), text=rendered, return_tensors="pt")[
                    "input_ids"
                ]
                == config.image_token_id
            ).sum()
        )
        for side in (96, 384, 1024)
    }
    assert set(counts.values()) == {256}, counts  # 48x48 px per token: a square fills 16 x 16


def test_from_pretrained_round_trip(family_dir, tmp_path, comfy_image):
    """The fixture loads with transformers' own class, saves and reloads to identical outputs."""
    model_type, folder = family_dir
    mllm = load_mllm(folder, device="cpu", dtype="float32")
    assert type(mllm.model).__name__ == FAMILIES[model_type].model_class
    assert mllm.family.model_type == model_type and mllm.num_layers == 4 and mllm.layer == 3
    inputs = mllm.prepare_inputs(comfy_image, INSTRUCTION)
    with torch.no_grad():
        before = mllm.model(**inputs).logits
    copy = tmp_path / "copy"
    mllm.model.save_pretrained(copy)
    mllm.processor.save_pretrained(copy)
    again = load_mllm(copy, device="cpu", dtype="float32")
    with torch.no_grad():
        after = again.model(**again.prepare_inputs(comfy_image, INSTRUCTION)).logits
    torch.testing.assert_close(after, before, atol=0, rtol=0)


def test_messages_put_the_image_where_the_family_reads_it_best(family_dir):
    model_type, _ = family_dir
    family = FAMILIES[model_type]
    user = family.messages(INSTRUCTION, with_mask=True)[1]["content"]
    kinds = [part["type"] for part in user]
    # Qwen templates keep the order: instruction first, so image tokens attend to it (causal attention).
    assert kinds == (["text", "image"] if family.image_after_text else ["image", "text"])
    assert family.image_after_text == (model_type != "llava_onevision")  # the others keep content order
    assert "outline" in user[kinds.index("text")]["text"]  # the mask is announced in the request


def test_one_pass_equals_separate_forward_and_head_and_a_plain_generate(family_mllm, comfy_image, comfy_mask):
    model_type, mllm = family_mllm
    result = mllm.refine_and_embed(comfy_image, INSTRUCTION, mask=comfy_mask, max_new_tokens=6)
    assert result.v_insight.shape == (1, 1024)
    inputs = mllm.prepare_inputs(comfy_image, INSTRUCTION, mask=comfy_mask)
    with torch.no_grad():
        out = mllm.model(**inputs, output_hidden_states=True)
        expected = mllm.head(out.hidden_states[mllm.layer], inputs["attention_mask"])
        ids = mllm.model.generate(
            **inputs, max_new_tokens=6, do_sample=False, pad_token_id=mllm.processor.tokenizer.pad_token_id
        )
    torch.testing.assert_close(result.v_insight, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        mllm.embed(comfy_image, INSTRUCTION, mask=comfy_mask), expected, atol=1e-5, rtol=0
    )
    plain = mllm.processor.tokenizer.decode(ids[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert result.text == plain
    assert result.prompt_tokens == inputs["input_ids"].shape[1]


def test_the_layer_hook_reads_every_decoder_layer_kind(family_mllm, comfy_image):
    """The hook's capture equals ``hidden_states[layer]`` at every depth (the last one through the final
    norm): LLaVA / Qwen2.5-VL / Qwen3-VL full attention, Qwen3.5's linear-attention (1-3) and
    full-attention (4) layers, Gemma 4's sliding, full and KV-sharing (4) layers."""
    from mindedit_core.mllm import capture_layer
    from mindedit_core.mllm.hooks import run_until_captured

    _, mllm = family_mllm
    inputs = mllm.prepare_inputs(comfy_image, INSTRUCTION)
    with torch.no_grad():
        states = mllm.model(**inputs, output_hidden_states=True).hidden_states
        for layer in range(1, mllm.num_layers + 1):
            with capture_layer(mllm.model, layer, stop_after=True) as capture:
                hidden = run_until_captured(lambda: mllm.model(**inputs, use_cache=False), capture)
            if layer == mllm.num_layers:  # the last entry is after the language model's final norm
                hidden = mllm.model.model.language_model.norm(hidden)
            torch.testing.assert_close(hidden, states[layer], atol=1e-5, rtol=0)


def test_a_layer_generate_computes_for_one_position_only_is_refused(tiny_gemma4_dir):
    """Gemma 4's KV-sharing layers see only the last prompt token during ``generate``: the default
    layer m stops before them and a head reading one of them is refused, naming the usable range."""
    from mindedit_core.mllm import MindEditMLLM
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig

    base = load_mllm(tiny_gemma4_dir, device="cpu", dtype="float32")
    assert base.family.readable_layers(base.model.config) == 3 and base.layer == 3
    head = VisionHead(VisionHeadConfig.for_kind("plain", hidden_size=64, layer=4))
    with pytest.raises(ValueError, match=r"layer m must be in 1\.\.3"):
        MindEditMLLM(base.model, base.processor, head)


def test_zero_shot_refinement_falls_back_visibly(family_dir, comfy_image):
    """No MIND-Edit training, no head: the base model refines in both output styles; its gibberish
    answer must fall back to the instruction with a warning naming the style's field (never an empty
    or silently wrong prompt), and each style's own prompt is what reached the model."""
    from mindedit_core.prompt_styles import EDIT_INSTRUCTION, SD_TAGS

    model_type, folder = family_dir
    base = load_mllm(folder, device="cpu", dtype="float32")
    assert not base.has_head
    prompt_tokens = {}
    for style in (SD_TAGS, EDIT_INSTRUCTION):
        system = FAMILIES[model_type].messages(INSTRUCTION, with_mask=False, style=style.name)[0]
        assert system["content"][0]["text"] == style.system_prompt
        result = base.refine_full(comfy_image, INSTRUCTION, max_new_tokens=8, style=style.name)
        refined = result.refined
        assert not refined.parsed and refined.positive == INSTRUCTION
        assert refined.warning and "fell back" in refined.warning
        assert f"no {style.positive_key} was found" in refined.warning
        prompt_tokens[style.name] = result.prompt_tokens
    assert prompt_tokens[SD_TAGS.name] != prompt_tokens[EDIT_INSTRUCTION.name]


def _image_tokens(mllm, image, side: int) -> int:
    inputs = mllm.prepare_inputs(image, INSTRUCTION, max_image_side=side)
    config = mllm.model.config
    token = getattr(config, "image_token_id", None)
    if token is None:
        token = config.image_token_index
    return int((inputs["input_ids"] == token).sum())


def test_max_image_side_bounds_the_visual_tokens(family_mllm):
    """A 1024 px image costs fewer visual tokens at a smaller ``max_image_side``; for Qwen the count is
    exactly the processor's own dynamic-resolution math (one token per 28 or 32 px square). The tiny
    LLaVA-OneVision's tiles are 32 px (anyres caps it at 192 px), hence its smaller sides."""
    model_type, mllm = family_mllm
    image = torch.rand((1, 768, 1024, 3), generator=torch.Generator().manual_seed(0))
    sides = (48, 96, 192) if model_type == "llava_onevision" else (256, 512, 768)
    counts = [_image_tokens(mllm, image, side) for side in sides]
    if not mllm.family.image_tokens_follow_side:  # Gemma 4: every image fills the same token budget
        assert counts[0] == counts[1] == counts[2] > 0
        return
    assert counts[0] < counts[1] < counts[2]
    if model_type != "llava_onevision":
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        processor = mllm.processor.image_processor
        factor = processor.patch_size * processor.merge_size
        h, w = smart_resize(
            384,
            512,
            factor=factor,
            min_pixels=processor.size["shortest_edge"],
            max_pixels=processor.size["longest_edge"],
        )
        assert counts[1] == (h // factor) * (w // factor)


def test_lora_targets_only_the_language_model(family_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from mindedit_core.checkpoint import lora_target_regex

    model_type, folder = family_dir
    model = AutoModelForImageTextToText.from_pretrained(folder)
    vision_names = FAMILIES[model_type].vision_modules
    # the vision tower really has projections a bare ["q_proj", ...] / ["qkv", "proj"] list would hit
    assert any(
        any(v in n for v in vision_names)
        and n.rsplit(".", 1)[-1] in ("q_proj", "qkv", "proj", "fc1", "up_proj")
        for n, _ in model.named_modules()
    )
    from mindedit_core.mllm import find_decoder_layers

    # q, k, v, o where the layer has them (Gemma 4 KV-sharing layers have no k, v), the DeltaNet
    # in/out projections of Qwen3.5 linear-attention layers, and gate, up, down everywhere
    expected = sum(
        sum(getattr(getattr(layer, "self_attn", None), f"{p}_proj", None) is not None for p in "qkvo")
        + sum(getattr(getattr(layer, "linear_attn", None), p, None) is not None for p in _DELTANET_LORA)
        + 3
        for layer in find_decoder_layers(model)
    )
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=lora_target_regex(model)))
    adapted = [
        n
        for n, m in peft_model.named_modules()
        if hasattr(m, "lora_A") and n.endswith(("proj", *_DELTANET_LORA))
    ]
    assert len(adapted) == expected
    assert expected == {"qwen3_5": 3 * (3 + 3) + 7, "gemma4": 3 * 7 + 5}.get(model_type, 4 * 7)
    assert all("language_model" in n and not any(v in n for v in vision_names) for n in adapted)


def test_unsupported_model_type_lists_the_supported_ones(tmp_path):
    folder = tmp_path / "internvl"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "internvl"}))
    with pytest.raises(MLLMFolderError) as err:
        check_mllm_folder(folder)
    message = str(err.value)
    assert "'internvl'" in message and str(folder) in message
    for family in FAMILIES.values():
        assert repr(family.model_type) in message and family.display_name in message


def test_incomplete_qwen_folder_names_what_is_missing(tmp_path, tiny_qwen2_5_vl_dir):
    partial = tmp_path / "partial"
    shutil.copytree(tiny_qwen2_5_vl_dir, partial)
    (partial / "processor_config.json").unlink()  # transformers 5.x writes the processor settings here
    with pytest.raises(
        MLLMFolderError, match=r"incomplete Qwen2\.5-VL folder: no processor files.*hf download"
    ):
        check_mllm_folder(partial)


@pytest.mark.parametrize(
    ("model_type", "first"),
    [
        ("llava_onevision", "4.45.0"),
        ("qwen2_5_vl", "4.49.0"),
        ("qwen3_vl", "4.57.0"),
        ("qwen3_5", "5.2.0"),
        ("gemma4", "5.5.0"),
    ],
)
def test_too_old_transformers_names_the_first_release(monkeypatch, model_type, first):
    import transformers

    from mindedit_core.mllm import UnsupportedTransformersError

    family = family_for(model_type)
    assert family.first_transformers == first
    assert family.model_class_object() is getattr(transformers, family.model_class)
    monkeypatch.setattr(transformers, "__version__", "4.51.3")
    with pytest.raises(UnsupportedTransformersError) as err:
        family.model_class_object()
    message = str(err.value)
    assert (
        f"first ships in {first}" in message
        and "4.51.3" in message
        and "pip install -U transformers" in message
    )
    assert f">= {family.min_transformers}" in message


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("tiny_qwen2_5_vl_dir", (196, 729, 1369)),
        ("tiny_qwen3_vl_dir", (144, 576, 1024)),
        ("tiny_qwen3_5_dir", (144, 576, 1024)),
    ],
)
def test_documented_qwen_token_counts(request, fixture, expected):
    """docs/MODELS.md and BENCHMARKS.md list these counts: the fixtures carry the real processor
    settings, so they are the real models' counts for a square image of 384, 768 and 1024 px."""
    from PIL import Image

    from mindedit_core.mllm.loading import load_processor

    path, family = check_mllm_folder(request.getfixturevalue(fixture))
    processor = load_processor(path, family)
    token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    text = family.render_prompt(processor, family.messages("x", with_mask=False))
    counts = tuple(
        int(
            (
                processor(images=Image.new("RGB", (side, side)), text=text, return_tensors="pt")["input_ids"]
                == token
            ).sum()
        )
        for side in (384, 768, 1024)
    )
    assert counts == expected
