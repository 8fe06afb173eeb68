"""Issue 20, items 2 and 7-10: an incomplete or mismatched VLM folder is named, with the family's own
fix, before (or instead of) a load that would fail later with another cause or run with random weights.

Each test works on a copy of a family's tiny fixture (symlinks to the unchanged files) with one file
removed, rewritten or cut off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from mindedit_core.mllm import FAMILIES, MLLMFolderError, check_mllm_folder, load_mllm
from mindedit_core.safe_files import DamagedWeightsFileError


def _copy(tmp_path: Path, folder: Path, *, skip: tuple[str, ...] = ()) -> Path:
    target = tmp_path / folder.name
    target.mkdir()
    for item in folder.iterdir():
        if item.name not in skip:
            (target / item.name).symlink_to(item)
    return target


@pytest.fixture
def never_loads(monkeypatch):
    """Fail the test if any family's model weights are read: the folder check must come first."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the folder problem was named")

    for family in FAMILIES.values():
        monkeypatch.setattr(getattr(transformers, family.model_class), "from_pretrained", refuse)


# -- 2: missing or unexpected weights --------------------------------------------------------------


def test_weights_missing_a_decoder_layer_are_refused_with_the_keys(tmp_path, family_dir):
    from mindedit_core.mllm.weight_report import WeightsMismatchError

    model_type, folder = family_dir
    target = _copy(tmp_path, folder, skip=("model.safetensors",))
    tensors = load_file(folder / "model.safetensors")
    dropped = sorted(k for k in tensors if "layers.1." in k and "visual" not in k and "vision" not in k)
    assert dropped, "precondition: the fixture has a decoder layer 1"
    kept = {k: v for k, v in tensors.items() if k not in dropped}
    save_file(kept, target / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(WeightsMismatchError) as err:
        load_mllm(target, device="cpu", dtype="fp32")
    message = str(err.value)
    assert str(target) in message and "model.safetensors" in message and "not in the files" in message
    assert "layers.1." in message and FAMILIES[model_type].example_repo in message


def test_unexpected_weights_are_refused_too(tmp_path, tiny_qwen2_5_vl_dir):
    import torch

    from mindedit_core.mllm.weight_report import WeightsMismatchError

    target = _copy(tmp_path, tiny_qwen2_5_vl_dir, skip=("model.safetensors",))
    tensors = load_file(tiny_qwen2_5_vl_dir / "model.safetensors")
    tensors["model.language_model.layers.9.mlp.up_proj.weight"] = torch.zeros(4, 4)
    save_file(tensors, target / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(WeightsMismatchError, match=r"belong to no layer.*layers\.9\.mlp\.up_proj"):
        load_mllm(target, device="cpu", dtype="fp32")


# -- 7: tokenizer files ----------------------------------------------------------------------------


def test_a_missing_tokenizer_json_is_named_before_loading(tmp_path, family_dir, never_loads):
    model_type, folder = family_dir
    target = _copy(tmp_path, folder, skip=("tokenizer.json",))
    assert (target / "tokenizer_config.json").exists()
    with pytest.raises(MLLMFolderError, match=r"tokenizer\.json is missing") as err:
        load_mllm(target, device="cpu", dtype="fp32")
    assert f"hf download {FAMILIES[model_type].example_repo}" in str(err.value)


# -- 8: a sharded checkpoint missing its last shard and index --------------------------------------


def test_a_missing_last_shard_and_index_are_named(tmp_path, tiny_llava_dir, never_loads):
    target = _copy(tmp_path, tiny_llava_dir, skip=("model.safetensors",))
    tensors = load_file(tiny_llava_dir / "model.safetensors")
    names = sorted(tensors)
    first = {k: tensors[k] for k in names[: len(names) // 2]}
    save_file(first, target / "model-00001-of-00002.safetensors", metadata={"format": "pt"})
    with pytest.raises(MLLMFolderError) as err:
        load_mllm(target, device="cpu", dtype="fp32")
    message = str(err.value)
    assert "model-00002-of-00002.safetensors" in message and "model.safetensors.index.json" in message
    assert "hf download llava-hf/" in message


# -- 9: the image processor's settings -------------------------------------------------------------


def test_a_missing_preprocessor_config_is_named_before_the_model_loads(tmp_path, tiny_llava_dir, never_loads):
    """Hub LLaVA-OneVision folders carry a processor_config.json without the image settings."""
    target = _copy(tmp_path, tiny_llava_dir, skip=("processor_config.json",))
    settings = json.loads((tiny_llava_dir / "processor_config.json").read_text())
    settings.pop("image_processor")
    (target / "processor_config.json").write_text(json.dumps(settings))
    with pytest.raises(MLLMFolderError, match=r"preprocessor_config\.json is missing"):
        load_mllm(target, device="cpu", dtype="fp32")
    check_mllm_folder(tiny_llava_dir)  # transformers 5's processor_config.json holds them: accepted


# -- 10: each family's fix names its own repo ------------------------------------------------------


def test_a_damaged_folder_names_the_familys_own_repo(tmp_path, family_dir):
    model_type, folder = family_dir
    target = _copy(tmp_path, folder, skip=("model.safetensors",))
    data = (folder / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedWeightsFileError) as err:
        load_mllm(target, device="cpu", dtype="fp32")
    message = str(err.value)
    assert f"hf download {FAMILIES[model_type].example_repo} --local-dir {target}" in message
    others = [f.example_repo for t, f in FAMILIES.items() if t != model_type]
    assert not any(repo in message for repo in others), message


def test_the_fix_names_the_release_of_the_folders_size(tmp_path):
    from mindedit_core.mllm.folder_files import download_fix

    folder = tmp_path / "Qwen2.5-VL-7B-Instruct"
    folder.mkdir()
    config = {"model_type": "qwen2_5_vl", "text_config": {"hidden_size": 3584, "num_hidden_layers": 28}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model-00001-of-00005.safetensors").write_bytes(b"")
    with pytest.raises(MLLMFolderError) as err:
        check_mllm_folder(folder)
    message = str(err.value)
    assert "model-00002-of-00005.safetensors" in message and "and 1 more" in message
    assert f"hf download Qwen/Qwen2.5-VL-7B-Instruct --local-dir {folder}" in message
    assert "Qwen/Qwen2.5-VL-3B-Instruct" in download_fix(FAMILIES["qwen2_5_vl"])
