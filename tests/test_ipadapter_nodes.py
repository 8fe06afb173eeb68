"""The IP-Adapter node classes, imported in-process the way ComfyUI imports the pack (no server)."""

from __future__ import annotations

import pytest
import torch
from fixtures_ipadapter import FakeModelPatcher
from helpers_nodes import import_pack, pack_module

pytestmark = pytest.mark.slow  # imports ComfyUI in-process (several seconds on 2 busy cores)


@pytest.fixture(scope="module")
def ipa_nodes():
    return pack_module("nodes.ipadapter_nodes")


def test_nodes_are_in_the_pack_mappings(ipa_nodes):
    import_pack()
    pack_nodes = pack_module("nodes")
    for name, cls in ipa_nodes.NODE_CLASS_MAPPINGS.items():
        assert pack_nodes.NODE_CLASS_MAPPINGS[name] is cls
        assert name in ipa_nodes.NODE_DISPLAY_NAME_MAPPINGS


@pytest.mark.parametrize("name", ["MindEditIPAdapterLoader", "MindEditApplyIPAdapter"])
def test_every_input_has_a_tooltip_and_category(ipa_nodes, name):
    cls = ipa_nodes.NODE_CLASS_MAPPINGS[name]
    spec = cls.INPUT_TYPES()
    for section in spec.values():
        for input_name, definition in section.items():
            assert definition[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
    assert cls.CATEGORY == "MIND-Edit/IP-Adapter"
    assert callable(getattr(cls, cls.FUNCTION))


def test_apply_widgets_and_embeds_type_match_ipadapter_plus(ipa_nodes):
    spec = ipa_nodes.MindEditApplyIPAdapter.INPUT_TYPES()
    assert list(spec["required"]) == [
        "model",
        "ipadapter",
        "pos_embed",
        "weight",
        "start_at",
        "end_at",
        "batch_mapping",
    ]
    assert list(spec["optional"]) == ["neg_embed", "attn_mask"]
    assert spec["required"]["pos_embed"][0] == "EMBEDS" and spec["optional"]["neg_embed"][0] == "EMBEDS"
    assert spec["required"]["weight"][1]["min"] < 0  # negative weights allowed


def test_loader_lists_and_loads_from_models_ipadapter(ipa_nodes, ipadapter_sites16_files, tmp_path):
    import folder_paths

    folder = tmp_path / "ipadapter"
    folder.mkdir()
    (folder / "mine.safetensors").symlink_to(ipadapter_sites16_files["plain"])
    folder_paths.add_model_folder_path("ipadapter", str(folder))
    assert (
        "mine.safetensors" in ipa_nodes.MindEditIPAdapterLoader.INPUT_TYPES()["required"]["ipadapter_file"][0]
    )
    (adapter,) = ipa_nodes.MindEditIPAdapterLoader().load("mine.safetensors")
    assert adapter.kind == "plain" and len(adapter.sites) == 16


def test_apply_uses_comfy_attention_and_weight_zero_is_exact(ipa_nodes, ipadapter_sites16_files):
    from mindedit_core.ipadapter import load_ipadapter

    adapter = load_ipadapter(ipadapter_sites16_files["plain"])
    (patched,) = ipa_nodes.MindEditApplyIPAdapter().apply(
        FakeModelPatcher(), adapter, torch.randn(1, 1024), 0.0, 0.0, 1.0, "all"
    )
    patch = patched.attn2_patches()[("middle", 0, 0)]
    assert patch.attention_fn is ipa_nodes.comfy_attention
    from comfy.ldm.modules.attention import optimized_attention

    q, k, v = torch.randn(2, 16, 320), torch.randn(2, 77, 320), torch.randn(2, 77, 320)
    extra = {"n_heads": 8, "cond_or_uncond": [1, 0], "sigmas": torch.tensor([3.0, 3.0])}
    assert torch.equal(patch(q, k, v, extra), optimized_attention(q, k, v, 8))
