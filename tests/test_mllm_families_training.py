"""Per family: a checkpoint made for another family or size is refused naming both; a short joint LoRA
training run exports a checkpoint that ComfyUI's loader node loads and whose v_insight drives the
IP-Adapter apply."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from fixtures_ipadapter import FakeModelPatcher
from fixtures_mllm import FAMILY_FIXTURES
from helpers_nodes import import_pack, pack_module

from mindedit_core.checkpoint import (
    MANIFEST_NAME,
    BaseModelMismatchError,
    base_model_info,
    save_mindedit_checkpoint,
)
from mindedit_core.mllm import load_mllm
from mindedit_core.vision_head import VisionHead, VisionHeadConfig
from training.config import build_config
from training.train import train


@pytest.fixture(scope="module")
def qwen_head_checkpoint(tiny_qwen2_5_vl_dir, tmp_path_factory):
    """A checkpoint (random plain head) made for the tiny Qwen2.5-VL."""
    from transformers import AutoConfig

    info = base_model_info(AutoConfig.from_pretrained(tiny_qwen2_5_vl_dir), name="tiny-qwen2.5-vl")
    torch.manual_seed(0)
    head = VisionHead(VisionHeadConfig.for_kind("plain", hidden_size=info.hidden_size, layer=3))
    out = tmp_path_factory.mktemp("ckpt") / "qwen-head"
    return save_mindedit_checkpoint(out, base=info, head=head)


def test_manifest_records_family_and_base_model(qwen_head_checkpoint):
    manifest = json.loads((qwen_head_checkpoint / MANIFEST_NAME).read_text())
    assert manifest["base_model"]["family"] == "qwen2_5_vl"
    assert manifest["base_model"]["name"] == "tiny-qwen2.5-vl"
    assert (manifest["base_model"]["hidden_size"], manifest["base_model"]["num_layers"]) == (64, 4)


@pytest.mark.parametrize("other", ["llava_onevision", "qwen3_vl", "qwen3_5", "gemma4"])
def test_a_head_for_another_family_is_refused_naming_both(request, qwen_head_checkpoint, other):
    """Same width and depth (all tiny fixtures are 64 x 4): only the family tells them apart."""
    folder = request.getfixturevalue(FAMILY_FIXTURES[other])
    with pytest.raises(BaseModelMismatchError) as err:
        load_mllm(folder, device="cpu", checkpoint_dir=qwen_head_checkpoint)
    message = str(err.value)
    shown = {
        "llava_onevision": "LLaVA-OneVision",
        "qwen3_vl": "Qwen3-VL",
        "qwen3_5": "Qwen3.5",
        "gemma4": "Gemma 4",
    }[other]
    assert "trained on Qwen2.5-VL 'tiny-qwen2.5-vl' (hidden 64, 4 layers)" in message
    assert f"the loaded MLLM is {shown}" in message and f"family Qwen2.5-VL != {shown}" in message


def test_a_head_for_another_size_is_refused_naming_both(tmp_path, qwen_head_checkpoint, tiny_qwen2_5_vl_dir):
    ckpt = tmp_path / "3b-head"
    shutil.copytree(qwen_head_checkpoint, ckpt)
    manifest = json.loads((ckpt / MANIFEST_NAME).read_text())
    manifest["base_model"].update(hidden_size=2048, num_layers=36, name="Qwen2.5-VL-3B-Instruct")
    (ckpt / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BaseModelMismatchError) as err:
        load_mllm(tiny_qwen2_5_vl_dir, device="cpu", checkpoint_dir=ckpt)
    message = str(err.value)
    assert "Qwen2.5-VL 'Qwen2.5-VL-3B-Instruct' (hidden 2048, 36 layers)" in message
    assert f"Qwen2.5-VL '{tiny_qwen2_5_vl_dir.name}' (hidden 64, 4 layers)" in message
    assert "hidden size 2048 != 64" in message and "layer count 36 != 4" in message


def test_an_old_manifest_without_family_reads_its_model_type(tmp_path, qwen_head_checkpoint):
    from mindedit_core.checkpoint import read_checkpoint

    ckpt = tmp_path / "old"
    shutil.copytree(qwen_head_checkpoint, ckpt)
    manifest = json.loads((ckpt / MANIFEST_NAME).read_text())
    del manifest["base_model"]["family"]
    (ckpt / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert read_checkpoint(ckpt).base.family == "qwen2_5_vl"


# -- training -> ComfyUI loader node -> IP-Adapter ---------------------------------------------------


@pytest.fixture
def comfy_folders(tmp_path, monkeypatch):
    import_pack()
    import folder_paths

    roots = {}
    for name in ("LLM", "mindedit"):
        root = tmp_path / name
        root.mkdir()
        roots[name] = root
        exts = folder_paths.folder_names_and_paths[name][1]
        monkeypatch.setitem(folder_paths.folder_names_and_paths, name, ([str(root)], exts))
    return roots


@pytest.mark.slow
@pytest.mark.parametrize("model_type", sorted(FAMILY_FIXTURES))
def test_joint_lora_training_exports_what_the_loader_node_runs(
    request, model_type, training_inputs, tmp_path, comfy_folders, ipadapter_sites16_files
):
    from mindedit_core.ipadapter import load_ipadapter

    folder = request.getfixturevalue(FAMILY_FIXTURES[model_type])
    cfg = build_config(
        "lora",
        ["layer=null"],
        model=str(folder),
        data=str(training_inputs["data"]),
        refined=str(training_inputs["refined"]),
        targets=str(training_inputs["targets"]),
        output_dir=str(tmp_path / "run"),
        split="none",
        precision="fp32",
        batch_size=2,
        grad_accum=1,
        limit=4,
        max_steps=2,
        progress=False,
        tensorboard=False,
        lora_r=4,
        lora_alpha=8,
    )
    result = train(cfg)
    assert result.global_step == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    assert {"ce", "embed"} <= set(result.history[-1])  # both losses of the joint variant
    manifest = json.loads((result.checkpoint_dir / MANIFEST_NAME).read_text())
    assert manifest["base_model"]["family"] == model_type and manifest["variant"] == "joint"
    assert (
        manifest["parts"] == {"lora": True, "vision_head": True, "negative_embeds": False}
        and manifest["layer"] == 3
    )

    (comfy_folders["LLM"] / "tiny-vlm").symlink_to(folder, target_is_directory=True)
    (comfy_folders["mindedit"] / "trained").symlink_to(result.checkpoint_dir, target_is_directory=True)
    loader = pack_module("nodes.mllm_loader")
    refine = pack_module("nodes.refine")
    (handle,) = loader.MindEditMLLMLoader().load("tiny-vlm", "trained", "float32", "none", "sdpa")
    assert handle.mllm.family.model_type == model_type
    image = torch.rand((1, 96, 128, 3), generator=torch.Generator().manual_seed(0))
    pos, neg, emb_pos, emb_neg, raw, status = refine.MindEditRefineAndEmbed().run(
        handle, image, "make it brighter", 0, 8, 384
    )
    assert emb_pos.shape == (1, 1024) and torch.isfinite(emb_pos).all() and emb_pos.abs().sum() > 0
    assert "tiny-vlm + trained" in status and isinstance(pos, str) and pos
    direct = load_mllm(folder, device="cpu", dtype="float32", checkpoint_dir=result.checkpoint_dir)
    expected = direct.refine_and_embed(image, "make it brighter", max_new_tokens=8).v_insight
    torch.testing.assert_close(emb_pos, expected, atol=1e-5, rtol=0)

    ipa_nodes = pack_module("nodes.ipadapter_nodes")
    adapter = load_ipadapter(ipadapter_sites16_files["plain"])
    q, k, v = torch.randn(2, 16, 320), torch.randn(2, 77, 320), torch.randn(2, 77, 320)
    extra = {"n_heads": 8, "cond_or_uncond": [1, 0], "sigmas": torch.tensor([3.0, 3.0])}
    outputs = {}
    for weight in (0.0, 1.0):
        (patched,) = ipa_nodes.MindEditApplyIPAdapter().apply(
            FakeModelPatcher(), adapter, emb_pos, weight, 0.0, 1.0, "all"
        )
        outputs[weight] = patched.attn2_patches()[("middle", 0, 0)](q, k, v, extra)
    assert not torch.allclose(outputs[1.0], outputs[0.0])  # v_insight really steers the attention


@pytest.mark.parametrize("model_type", ["qwen3_vl", "qwen3_5", "gemma4"])
def test_training_prompt_is_the_inference_prompt(request, model_type, training_inputs, tmp_path):
    """The encoded training sample starts with exactly the ids, image tensors and token types that
    inference builds (instruction before the image; Qwen3.5 with thinking off in both); the answer
    ends with the family's end-of-turn token; a batch concatenates Qwen's patches and grids and
    stacks Gemma 4's fixed-size patch tensors."""
    from training.collate import IGNORE_INDEX, EditTrainDataset, collate
    from training.data import load_humanedit

    mllm = load_mllm(request.getfixturevalue(FAMILY_FIXTURES[model_type]), device="cpu", dtype="float32")
    record = load_humanedit(training_inputs["data"], cache_dir=tmp_path)[0].with_refined(
        "red square", "blurry"
    )
    dataset = EditTrainDataset(
        [record],
        mllm.processor,
        with_answer=True,
        targets=None,
        target_kind="plain",
        use_mask=True,
        max_side=384,
        family=mllm.family,
    )
    sample = dataset[0]
    inference = mllm.prepare_inputs(record.load_source(), record.instruction, mask=record.load_mask())
    n = sample["prompt_len"]
    assert torch.equal(sample["input_ids"][:n], inference["input_ids"][0])
    for key in mllm.family.image_input_keys:
        expected = inference[key] if mllm.family.image_batching == "flat_patches" else inference[key][0]
        assert torch.equal(sample[key], expected), key
    assert torch.equal(sample["mm_token_type_ids"][:n], inference["mm_token_type_ids"][0])
    assert (sample["mm_token_type_ids"][n:] == 0).all() and (sample["labels"][:n] == IGNORE_INDEX).all()
    end = mllm.processor.tokenizer.convert_tokens_to_ids(mllm.family.end_of_answer)
    assert int(sample["input_ids"][-1]) == end and int(sample["labels"][-1]) == end
    batch = collate([sample, sample], pad_token_id=mllm.processor.tokenizer.pad_token_id)
    assert batch["mm_token_type_ids"].shape == batch["input_ids"].shape
    if mllm.family.image_batching == "flat_patches":
        assert batch["pixel_values"].shape[0] == 2 * sample["pixel_values"].shape[0]
        assert batch["image_grid_thw"].shape == (2, 3)
    else:
        assert all(batch[k].shape == (2, *sample[k].shape) for k in mllm.family.image_input_keys)
