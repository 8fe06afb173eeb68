"""What a VLM family must provide (`check_family`), checked for every registered family, against its
tiny fixture where a fact can be measured, and the texts derived from the family table (catalogue,
tooltips, README's list and docs/MODELS.md's tables)."""

from __future__ import annotations

import re

import pytest

from mindedit_core.mllm.families import FAMILIES, MLLMFamily, Release, check_family, family_names


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_every_family_provides_its_facts(model_type):
    family = FAMILIES[model_type]
    assert family.model_type == model_type
    assert check_family(family) == []


def test_the_check_names_what_a_family_lacks():
    family = FAMILIES["qwen2_5_vl"]
    broken = MLLMFamily(
        **{
            **{f: getattr(family, f) for f in family.__dataclass_fields__},
            "display_name": "",
            "image_batching": "interleaved",
            "releases": (Release("k", "o/r", "1B", "1 B", 8, 4, "1 GB", "~1 GB", "~1 GB"),),
            "image_tokens": ((384, 9),),
        }
    )
    problems = "\n".join(check_family(broken))
    for expected in (
        "display_name is empty",
        "image_batching 'interleaved'",
        "not one of its releases",
        "1024 px",
    ):
        assert expected in problems


def test_the_fixture_agrees_with_its_family(family_dir):
    """End token, text width and depth, layer m and LoRA targets read from the real architecture."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    model_type, folder = family_dir
    family = FAMILIES[model_type]
    tokenizer = AutoProcessor.from_pretrained(folder).tokenizer
    assert len(tokenizer(family.end_of_answer, add_special_tokens=False)["input_ids"]) == 1
    config = AutoConfig.from_pretrained(folder)
    assert family.text_dims(config) == (64, 4) and family.default_layer(4) == 3
    model = AutoModelForImageTextToText.from_pretrained(folder)
    only_layer_1 = get_peft_model(model, LoraConfig(r=2, target_modules=family.lora_target_regex([1])))
    adapted = [n for n, m in only_layer_1.named_modules() if hasattr(m, "lora_A")]
    # 7 = q, k, v, o + gate, up, down; Qwen3.5's layer 1 is a DeltaNet layer: its 3 in/out projections + 3
    assert len(adapted) == (6 if model_type == "qwen3_5" else 7)
    assert all(re.search(r"layers\.1\.", n) for n in adapted)


def test_the_download_catalogue_is_the_family_table(tmp_path):
    from devkit.download_models import WHAT_CHOICES, catalogue

    items = catalogue(tmp_path)
    for family in FAMILIES.values():
        for release in family.releases:
            item = items[release.key]
            assert item.repo_id == release.repo and item.approx_size == release.download_size
            assert item.description.startswith(family.release_name(release))
            assert (
                f"layer m {family.default_layer(release.num_layers, readable=release.readable_layers)} of "
                f"{release.num_layers}" in item.description
            )
    assert [k for k in WHAT_CHOICES if k in items and items[k].target.parent.name == "LLM"] == [
        r.key for f in FAMILIES.values() for r in f.releases
    ]


def test_readme_and_models_doc_list_every_family_as_generated():
    from devkit.family_docs import stale_files

    assert stale_files() == [], "run `python -m devkit.family_docs` to regenerate the family tables"


def test_node_texts_name_every_family(pack):
    from helpers_nodes import pack_module

    loader = pack_module("nodes.mllm_loader").MindEditMLLMLoader.INPUT_TYPES()["required"]
    refine = pack_module("nodes.refine").MindEditRefineInstruction.INPUT_TYPES()["required"]
    texts = loader["model_folder"][1]["tooltip"] + refine["max_image_side"][1]["tooltip"]
    for family in FAMILIES.values():
        assert texts.count(family.display_name) >= 2
    assert family_names() in loader["model_folder"][1]["tooltip"]


@pytest.fixture(scope="module")
def pack():
    from helpers_nodes import import_pack

    return import_pack()


def test_a_registered_family_appears_in_every_derived_text(monkeypatch):
    """Registering one family object is all the texts need (no list elsewhere to edit)."""
    from dataclasses import replace

    from mindedit_core.mllm.families import family_for, texts

    toy = replace(
        FAMILIES["qwen3_vl"],
        model_type="toy_vl",
        display_name="Toy-VL",
        example_repo="toy/Toy-VL-1B",
        releases=(
            Release("toy-vl-1b", "toy/Toy-VL-1B", "1B", "1.1 B", 1024, 24, "2 GB", "~2.5 GB", "~1 GB"),
        ),
        image_tokens=((384, 81), (1024, 576)),
    )
    monkeypatch.setitem(FAMILIES, "toy_vl", toy)
    assert check_family(toy) == [] and family_for("toy_vl") is toy
    assert family_names().endswith("or Toy-VL")
    assert "Toy-VL ~81 / ~580" in texts.image_tokens_hint()
    assert "`toy-vl-1b`" in texts.readme_family_list() and "`toy/Toy-VL-1B`" in texts.supported_vlms_table()
    assert "| 18 |" in texts.supported_vlms_table().splitlines()[-1]  # layer m of 24, derived


@pytest.mark.parametrize("layout", ["padded_tiles", "flat_patches", "stacked"])
def test_each_image_batching_batches_per_sample_tensors(layout):
    """One sample's tensors (`per_sample_image_inputs`) batch back into the processor's layout."""
    from dataclasses import replace

    import torch

    keys = {
        "padded_tiles": ("pixel_values", "image_sizes"),
        "flat_patches": ("pixel_values", "image_grid_thw"),
    }
    family = replace(
        FAMILIES["qwen2_5_vl"], image_batching=layout, image_input_keys=keys.get(layout, ("pixel_values",))
    )
    encoded = [
        {
            "pixel_values": torch.rand(1, n, 3, 4, 4),
            "image_sizes": torch.tensor([[8, 8]]),
            "image_grid_thw": torch.tensor([[1, 2, n]]),
        }
        for n in (2, 3)
    ]
    if layout == "flat_patches":  # patch rows of every image, no batch dimension
        encoded = [
            {"pixel_values": torch.rand(n, 12), "image_grid_thw": torch.tensor([[1, 2, n]])} for n in (2, 3)
        ]
    if layout == "stacked":
        encoded = [{"pixel_values": torch.rand(1, 5, 6)} for _ in range(2)]
    batch = family.batch_image_inputs([family.per_sample_image_inputs(e) for e in encoded])
    if layout == "padded_tiles":
        assert batch["pixel_values"].shape == (2, 3, 3, 4, 4) and batch["image_sizes"].shape == (2, 2)
        assert torch.equal(batch["pixel_values"][0, :2], encoded[0]["pixel_values"][0])
        assert not batch["pixel_values"][0, 2].any()  # padding
    elif layout == "flat_patches":
        assert batch["pixel_values"].shape == (5, 12) and batch["image_grid_thw"].shape == (2, 3)
    else:
        assert torch.equal(batch["pixel_values"], torch.cat([e["pixel_values"] for e in encoded]))
