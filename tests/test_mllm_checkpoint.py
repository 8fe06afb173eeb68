"""The MIND-Edit checkpoint folder and the loader's checks: round trip, base-model mismatch, LoRA that
did not load, malformed folders, and unusable options."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch

from mindedit_core.checkpoint import (
    HEAD_NAME,
    MANIFEST_NAME,
    BaseModelInfo,
    BaseModelMismatchError,
    CheckpointError,
    LoraNotLoadedError,
    base_model_info,
    lora_target_regex,
    read_checkpoint,
    save_mindedit_checkpoint,
)
from mindedit_core.mllm import MindEditMLLM, MLLMFolderError, load_mllm
from mindedit_core.vision_head import VisionHead, VisionHeadConfig

INSTRUCTION = "turn the flower red"


@pytest.mark.slow
def test_save_load_round_trip_gives_identical_outputs(tmp_path, tiny_llava_dir, comfy_image):
    from peft import LoraConfig, get_peft_model

    base = load_mllm(tiny_llava_dir, device="cpu", dtype="fp32")
    torch.manual_seed(3)
    peft_model = get_peft_model(
        base.model,
        LoraConfig(r=4, lora_alpha=8, target_modules=lora_target_regex(base.model), init_lora_weights=False),
    ).eval()
    head = VisionHead(VisionHeadConfig.for_kind("plus", hidden_size=64, layer=2)).eval()
    head.set_target_norm(torch.rand(3, 257, 1280) + 0.5)
    reference = MindEditMLLM(peft_model, base.processor, head)
    ref = reference.refine_and_embed(comfy_image, INSTRUCTION, max_new_tokens=6)

    out = save_mindedit_checkpoint(
        tmp_path / "ckpt", base=base.model, head=head, lora_model=peft_model, variant="joint"
    )
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["parts"] == {"lora": True, "vision_head": True, "negative_embeds": False}
    assert manifest["layer"] == 2 and manifest["head"] == {
        "kind": "plus",
        "out_dim": 1280,
        "out_tokens": 257,
        "pool": "prompt",
    }
    assert manifest["base_model"]["hidden_size"] == 64 and manifest["base_model"]["num_layers"] == 4

    loaded = load_mllm(tiny_llava_dir, device="cpu", dtype="fp32", checkpoint_dir=out)
    got = loaded.refine_and_embed(comfy_image, INSTRUCTION, max_new_tokens=6)
    assert loaded.layer == 2
    assert got.text == ref.text
    torch.testing.assert_close(got.v_insight, ref.v_insight, atol=1e-5, rtol=1e-4)
    # The LoRA matters: the base model alone gives a different embedding through the same head.
    base_only = MindEditMLLM(load_mllm(tiny_llava_dir, device="cpu").model, base.processor, loaded.head)
    assert not torch.allclose(base_only.embed(comfy_image, INSTRUCTION), got.v_insight, atol=1e-4)


def test_plus_checkpoint_gives_plus_embeddings(tiny_llava_dir, tiny_ckpt_plus, comfy_image):
    mllm = load_mllm(tiny_llava_dir, device="cpu", checkpoint_dir=tiny_ckpt_plus)
    v = mllm.embed(comfy_image, INSTRUCTION)
    assert v.shape == (1, 257, 1280)
    torch.testing.assert_close(v.norm(dim=-1)[0], mllm.head.target_norm, atol=1e-4, rtol=1e-4)


def test_checkpoint_for_another_base_model_is_refused(tmp_path, tiny_llava_dir):
    other = BaseModelInfo(model_type="llava_onevision", hidden_size=896, num_layers=24, name="llava-0.5b")
    head = VisionHead(VisionHeadConfig.for_kind("plain", hidden_size=896, layer=18, width=64))
    ckpt = save_mindedit_checkpoint(tmp_path / "ckpt", base=other, head=head)
    with pytest.raises(BaseModelMismatchError, match=r"hidden size 896 != 64; layer count 24 != 4"):
        load_mllm(tiny_llava_dir, device="cpu", checkpoint_dir=ckpt)


def _copy_with_adapter(tmp_path, tiny_ckpt_plain, edit):
    from safetensors.torch import load_file, save_file

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_ckpt_plain, ckpt)
    adapter = ckpt / "lora" / "adapter_model.safetensors"
    save_file(edit(load_file(str(adapter))), str(adapter))
    return ckpt


@pytest.mark.filterwarnings("ignore:Found missing adapter keys")
def test_lora_that_does_not_fit_the_model_is_an_error(tmp_path, tiny_llava_dir, tiny_ckpt_plain):
    ckpt = _copy_with_adapter(
        tmp_path,
        tiny_ckpt_plain,
        lambda state: {k.replace("layers.", "blocks."): v for k, v in state.items()},
    )
    with pytest.raises(LoraNotLoadedError, match=r"did not load: \d+ of \d+ tensors have no place"):
        load_mllm(tiny_llava_dir, device="cpu", checkpoint_dir=ckpt)


def test_untrained_lora_is_an_error(tmp_path, tiny_llava_dir, tiny_ckpt_plain):
    ckpt = _copy_with_adapter(
        tmp_path,
        tiny_ckpt_plain,
        lambda state: {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in state.items()},
    )
    with pytest.raises(LoraNotLoadedError, match="only zero deltas"):
        load_mllm(tiny_llava_dir, device="cpu", checkpoint_dir=ckpt)


def test_malformed_checkpoint_folders_name_the_problem(tmp_path, tiny_ckpt_plain):
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        read_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=f"{MANIFEST_NAME} is missing"):
        read_checkpoint(tmp_path / "empty")
    no_lora = tmp_path / "no_lora"
    shutil.copytree(tiny_ckpt_plain, no_lora)
    shutil.rmtree(no_lora / "lora")
    with pytest.raises(CheckpointError, match="lists a LoRA adapter"):
        read_checkpoint(no_lora)
    no_head = tmp_path / "no_head"
    shutil.copytree(tiny_ckpt_plain, no_head)
    (no_head / HEAD_NAME).unlink()
    with pytest.raises(CheckpointError, match="lists a vision head"):
        read_checkpoint(no_head)
    not_an_object = tmp_path / "not_an_object"
    not_an_object.mkdir()
    (not_an_object / MANIFEST_NAME).write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="holds a JSON list, not the manifest object"):
        read_checkpoint(not_an_object)


def test_save_refuses_empty_or_mismatched_parts(tmp_path, tiny_llava_dir):
    info = BaseModelInfo("llava_onevision", 64, 4, "tiny")
    with pytest.raises(ValueError, match="needs a vision head, a LoRA adapter, or both"):
        save_mindedit_checkpoint(tmp_path / "a", base=info)
    wrong = VisionHead(VisionHeadConfig.for_kind("plain", hidden_size=32, layer=2))
    with pytest.raises(BaseModelMismatchError):
        save_mindedit_checkpoint(tmp_path / "b", base=info, head=wrong)
    assert not (tmp_path / "b").exists()


def test_base_model_info_reads_the_text_config(tiny_llava_untied_dir):
    from transformers import AutoConfig

    info = base_model_info(AutoConfig.from_pretrained(tiny_llava_untied_dir))
    assert (info.model_type, info.hidden_size, info.num_layers) == ("llava_onevision", 64, 4)


def test_folder_errors_name_the_folder_and_expected_files(tmp_path, tiny_llava_dir):
    with pytest.raises(MLLMFolderError, match=r"MLLM folder not found: .*nope.*config\.json"):
        load_mllm(tmp_path / "nope")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(
        MLLMFolderError,
        match=r"holds a 'llama' model.*Supported model_types: .*'llava_onevision'.*'qwen2_5_vl'.*'qwen3_vl'",
    ):
        load_mllm(other)
    partial = tmp_path / "partial"
    shutil.copytree(tiny_llava_dir, partial)
    (partial / "model.safetensors").unlink()
    with pytest.raises(MLLMFolderError, match=r"incomplete LLaVA-OneVision folder: no weights"):
        load_mllm(partial)


def test_quantization_off_cuda_is_refused_before_loading(tiny_llava_dir):
    from mindedit_core.mllm.quantization import QuantizationUnavailableError

    with pytest.raises(
        QuantizationUnavailableError, match=r"4bit quantization needs a CUDA GPU.*on cpu.*'none'"
    ):
        load_mllm(tiny_llava_dir, device="cpu", quantization="4bit")


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_quantization_without_bitsandbytes_is_a_clear_error():
    import torch

    from mindedit_core.mllm.quantization import check_quantization

    with pytest.raises(ImportError, match="pip install bitsandbytes"):
        check_quantization("8bit", torch.device("cuda"))
    assert check_quantization("none", torch.device("cpu")) is None


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash-attn is installed")
def test_flash_attention_without_the_package_is_a_clear_error(tiny_llava_dir):
    with pytest.raises(ImportError, match="pip install flash-attn"):
        load_mllm(tiny_llava_dir, device="cpu", attn_implementation="flash_attention_2")


def test_bad_options_are_named(tiny_llava_dir):
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_mllm(tiny_llava_dir, device="cpu", dtype="int3")
    with pytest.raises(ValueError, match="quantization must be one of"):
        load_mllm(tiny_llava_dir, device="cpu", quantization="2bit")


def test_lora_only_checkpoint_without_a_recorded_layer_loads(tmp_path, tiny_llava_dir, tiny_ckpt_plain):
    """``layer`` is optional without a head (save_mindedit_checkpoint records null): the MLLM then
    reads the default layer instead of failing on the null."""
    ckpt = tmp_path / "lora_only"
    shutil.copytree(tiny_ckpt_plain, ckpt)
    (ckpt / HEAD_NAME).unlink()
    manifest = json.loads((ckpt / MANIFEST_NAME).read_text())
    manifest.update(layer=None, head=None, variant="text-only")  # the old spelling still reads
    manifest["parts"]["vision_head"] = False
    (ckpt / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert read_checkpoint(ckpt).layer is None
    assert read_checkpoint(ckpt).variant == "text_only"
    mllm = load_mllm(tiny_llava_dir, device="cpu", checkpoint_dir=ckpt)
    assert mllm.head is None and mllm.layer == 3  # default_layer(4)
