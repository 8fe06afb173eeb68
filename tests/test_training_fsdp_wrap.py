"""FSDP's auto-wrap classes come from the model of every family (the released shapes, on the meta
device): accelerate's own lookup (`FullyShardedDataParallelPlugin.set_auto_wrap_policy`) succeeds with
the shipped fsdp.yaml and wraps exactly the decoder layers and the vision-encoder layers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from training.fsdp_wrap import configure_fsdp_wrap, layer_classes_to_wrap

FSDP_YAML = Path(__file__).resolve().parent.parent / "training" / "accelerate" / "fsdp.yaml"


def _llava_onevision_7b():
    from devkit.fixtures.real_shapes import real_llava_onevision_model

    return real_llava_onevision_model("7b", device="meta", with_processor=False)[0]


def _qwen(name: str):
    from devkit.fixtures.real_shapes import real_qwen_vl_meta_model

    return lambda: real_qwen_vl_meta_model(name)


def _released(name: str):
    from test_mllm_meta_families import _meta_model

    return lambda: _meta_model(name)


FAMILY_MODELS = {
    "llava_onevision": (_llava_onevision_7b, ["Qwen2DecoderLayer", "SiglipEncoderLayer"]),
    "qwen2_5_vl": (_qwen("qwen2.5-vl-3b"), ["Qwen2_5_VLDecoderLayer", "Qwen2_5_VLVisionBlock"]),
    "qwen3_vl": (_qwen("qwen3-vl-2b"), ["Qwen3VLTextDecoderLayer", "Qwen3VLVisionBlock"]),
    "qwen3_5": (_released("Qwen3.5-4B"), ["Qwen3_5DecoderLayer", "Qwen3_5VisionBlock"]),
    "gemma4": (_released("gemma-4-E2B-it"), ["Gemma4TextDecoderLayer", "Gemma4VisionEncoderLayer"]),
}


def _plugin_from_shipped_yaml():
    """accelerate's FSDP plugin with the wrap settings of training/accelerate/fsdp.yaml."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    fsdp = yaml.safe_load(FSDP_YAML.read_text())["fsdp_config"]
    classes = fsdp.get("fsdp_transformer_layer_cls_to_wrap")
    return FullyShardedDataParallelPlugin(
        auto_wrap_policy=fsdp["fsdp_auto_wrap_policy"].lower(),
        transformer_cls_names_to_wrap=classes.split(",") if classes else None,
    )


class _Joint(torch.nn.Module):
    """What training hands accelerate: the MLLM plus the vision head, in one module."""

    def __init__(self, mllm: torch.nn.Module) -> None:
        super().__init__()
        self.mllm = mllm
        self.head = torch.nn.Linear(4, 4, device="meta")


def test_every_family_is_covered():
    from mindedit_core.mllm.families import FAMILIES

    assert set(FAMILY_MODELS) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILY_MODELS))
def test_fsdp_wrap_classes_are_found_for_every_family(family):
    build, expected = FAMILY_MODELS[family]
    model = build()
    assert model.config.model_type == family
    assert layer_classes_to_wrap(model) == expected
    plugin = _plugin_from_shipped_yaml()
    joint = _Joint(model)
    assert configure_fsdp_wrap(plugin, joint.mllm) == expected
    plugin.set_auto_wrap_policy(joint)  # accelerate's lookup: raises when a class is not in the model
    wrapped = {cls.__name__ for cls in plugin.auto_wrap_policy.keywords["transformer_layer_cls"]}
    assert wrapped == set(expected)
    units = [m for m in joint.modules() if type(m).__name__ in wrapped]
    assert sum(type(m).__name__ == expected[0] for m in units) == model.config.text_config.num_hidden_layers
    vision = model.config.vision_config
    n_vision = getattr(vision, "depth", None) or vision.num_hidden_layers
    assert sum(type(m).__name__ == expected[1] for m in units) == n_vision


def test_classes_named_in_the_config_that_the_model_lacks_are_refused_with_the_fix():
    from accelerate.utils import FullyShardedDataParallelPlugin

    model = _qwen("qwen2.5-vl-3b")()
    plugin = FullyShardedDataParallelPlugin(
        auto_wrap_policy="transformer_based_wrap",
        transformer_cls_names_to_wrap=["Qwen2DecoderLayer", "SiglipEncoderLayer"],
    )
    with pytest.raises(ValueError, match="Qwen2_5_VLDecoderLayer,Qwen2_5_VLVisionBlock"):
        configure_fsdp_wrap(plugin, model)
