"""Damaged and unsafe weight files: the shared checks, and every loader of the pack that uses them
(the MLLM folder, the vision head, the LoRA adapter, IP-Adapter files)."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mindedit_core.mllm import FAMILIES
from mindedit_core.mllm.folder_files import download_fix
from mindedit_core.safe_files import (
    CHECKPOINT_FIX,
    DamagedWeightsFileError,
    UnsafePickleError,
    check_safetensors_file,
    check_safetensors_folder,
    load_torch_weights,
    load_weights,
    safetensors_problem,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIX = "Download it again."


class _RunsCode:
    """Unpickling this calls os.system: what a malicious .bin carries."""

    def __reduce__(self):
        return (os.system, ("echo unpickled-and-ran",))


def _good_file(path: Path) -> Path:
    save_file({"a": torch.arange(1000, dtype=torch.float32), "b": torch.ones(3, 4)}, str(path))
    return path


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_whole_file_passes_and_loads(tmp_path):
    path = _good_file(tmp_path / "w.safetensors")
    assert safetensors_problem(path) is None
    assert torch.equal(load_weights(path, what="test file", fix=FIX)["b"], torch.ones(3, 4))


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda p: _truncate(p, 0.5), "the download or copy was cut off"),
        (lambda p: _truncate(p, 0.001), "shorter than the 8-byte"),
        (lambda p: p.write_bytes(b"<!DOCTYPE html><html>404 Not Found</html>"), "not a safetensors file"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 16), "16 bytes after the last tensor"),
        (lambda p: p.write_bytes(struct.pack("<Q", 5) + b"{nope" + b"\0" * 8), "not valid JSON"),
    ],
)
def test_damage_is_named_with_the_file_and_the_fix(tmp_path, damage, needle):
    path = _good_file(tmp_path / "weights.safetensors")
    damage(path)
    with pytest.raises(DamagedWeightsFileError) as err:
        check_safetensors_file(path, what="test file", fix=FIX)
    message = str(err.value)
    assert f"The test file {path} is damaged or incomplete" in message
    assert needle in message and message.endswith(FIX)
    with pytest.raises(DamagedWeightsFileError, match="damaged or incomplete"):
        load_weights(path, what="test file", fix=FIX)


def test_truncation_reports_how_much_arrived(tmp_path):
    path = _truncate(_good_file(tmp_path / "w.safetensors"), 0.5)
    problem = safetensors_problem(path)
    assert f"the file has only {path.stat().st_size}" in problem and "%" in problem


def test_shard_index_lists_missing_shards(tmp_path):
    _good_file(tmp_path / "model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(
        DamagedWeightsFileError, match=r"index\.json is damaged or incomplete: it lists 1 shard"
    ) as err:
        check_safetensors_folder(tmp_path, what="MLLM weights file", fix=FIX)
    assert "model-00002-of-00002.safetensors" in str(err.value)


def test_pickle_with_code_is_refused_without_running_it_and_never_suggests_disabling_the_guard(
    tmp_path, capfd
):
    path = tmp_path / "adapter.bin"
    torch.save({"weights": {"x": _RunsCode()}}, path)
    with pytest.raises(UnsafePickleError) as err:
        load_torch_weights(path, what="test file", fix=FIX)
    message = str(err.value)
    assert str(path) in message
    assert "holds non-tensor objects" in message and "possibly code" in message
    assert "was not loaded" in message and ".safetensors copy" in message
    assert "system" in message  # the global it references, read from torch's refusal
    lowered = message.lower()
    for advice in ("weights_only", "weights only", "safe_globals", "allowlist", "allow-list", "trusted"):
        assert advice not in lowered, advice
    assert err.value.__cause__ is None and err.value.__suppress_context__  # torch's advice not chained
    assert "unpickled-and-ran" not in capfd.readouterr().out


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_cut_off_torch_file_is_damaged_not_unsafe(tmp_path, keep):
    path = tmp_path / "w.bin"
    torch.save({"a": torch.ones(100)}, path)
    _truncate(path, keep)
    with pytest.raises(DamagedWeightsFileError, match=r"w\.bin is damaged or incomplete"):
        load_torch_weights(path, what="test file", fix=FIX)


def test_cut_off_legacy_pickle_is_damaged_not_unsafe(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"a": torch.ones(100)}, path, _use_new_zipfile_serialization=False)
    _truncate(path, 0.3)
    with pytest.raises(DamagedWeightsFileError, match="damaged or incomplete"):
        load_torch_weights(path, what="test file", fix=FIX)


# -- the pack's loaders --------------------------------------------------------------------------------


def _llava_copy_with_truncated_weights(tmp_path: Path, tiny_llava_dir: Path) -> Path:
    folder = tmp_path / "llava"
    folder.mkdir()
    for item in tiny_llava_dir.iterdir():
        if item.name != "model.safetensors":
            (folder / item.name).symlink_to(item)
    shutil.copy(tiny_llava_dir / "model.safetensors", folder / "model.safetensors")
    _truncate(folder / "model.safetensors", 0.6)
    return folder


def _checkpoint_copy(tmp_path: Path, ckpt: Path) -> Path:
    target = tmp_path / "ckpt"
    shutil.copytree(ckpt, target)
    return target


def test_truncated_mllm_weights_are_named_before_transformers_reads_them(tmp_path, tiny_llava_dir):
    from mindedit_core.mllm import load_mllm

    folder = _llava_copy_with_truncated_weights(tmp_path, tiny_llava_dir)
    with pytest.raises(DamagedWeightsFileError) as err:
        load_mllm(folder, device="cpu")
    message = str(err.value)
    assert (
        f"The MLLM weights file {folder / 'model.safetensors'} is damaged" in message and "cut off" in message
    )
    assert message.endswith(download_fix(FAMILIES["llava_onevision"], folder))


@pytest.fixture
def base_model_never_loads(monkeypatch):
    """Fail the test if the base MLLM's weights are loaded: checkpoint damage must be named first."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("the base model was loaded before the damaged checkpoint file was named")

    monkeypatch.setattr(transformers.LlavaOnevisionForConditionalGeneration, "from_pretrained", refuse)


@pytest.mark.parametrize(
    ("fixture", "damaged"),
    [("tiny_ckpt_plus", "vision_head.safetensors"), ("tiny_ckpt_plain", "lora/adapter_model.safetensors")],
)
def test_truncated_head_or_lora_is_named_before_the_base_model_loads(
    request, tmp_path, tiny_llava_dir, base_model_never_loads, fixture, damaged
):
    from mindedit_core.mllm import load_mllm

    ckpt = _checkpoint_copy(tmp_path, request.getfixturevalue(fixture))
    _truncate(ckpt / damaged, 0.7)
    with pytest.raises(DamagedWeightsFileError) as err:
        load_mllm(tiny_llava_dir, device="cpu", checkpoint_dir=ckpt)
    message = str(err.value)
    assert f"The checkpoint file {ckpt / damaged} is damaged or incomplete" in message
    assert message.endswith(CHECKPOINT_FIX)


def test_truncated_head_and_lora_are_named_by_their_own_readers(tmp_path, tiny_ckpt_plain):
    from mindedit_core.checkpoint import HEAD_NAME, _read_adapter_file
    from mindedit_core.vision_head import VisionHead

    ckpt = _checkpoint_copy(tmp_path, tiny_ckpt_plain)
    _truncate(ckpt / HEAD_NAME, 0.7)
    with pytest.raises(
        DamagedWeightsFileError, match=r"The vision head file .*vision_head\.safetensors is damaged"
    ):
        VisionHead.load(ckpt / HEAD_NAME)
    adapter = ckpt / "lora" / "adapter_model.safetensors"
    _truncate(adapter, 0.7)
    with pytest.raises(
        DamagedWeightsFileError, match=r"The LoRA adapter file .*adapter_model\.safetensors is dam"
    ):
        _read_adapter_file(ckpt / "lora")


def test_lora_bin_with_code_is_refused_before_peft_opens_it(tmp_path, tiny_llava_dir, tiny_ckpt_plain):
    from mindedit_core.mllm import load_mllm

    ckpt = _checkpoint_copy(tmp_path, tiny_ckpt_plain)
    (ckpt / "lora" / "adapter_model.safetensors").unlink()
    torch.save({"x": _RunsCode()}, ckpt / "lora" / "adapter_model.bin")
    with pytest.raises(UnsafePickleError, match=r"adapter_model\.bin holds non-tensor objects"):
        load_mllm(tiny_llava_dir, device="cpu", checkpoint_dir=ckpt)


def test_truncated_ipadapter_file_is_named_with_the_fix(tmp_path, ipadapter_files):
    from mindedit_core.ipadapter import load_ipadapter

    path = tmp_path / "ip-adapter_sd15.safetensors"
    shutil.copy(ipadapter_files[("plain", "safetensors")], path)
    _truncate(path, 0.9)
    with pytest.raises(
        DamagedWeightsFileError, match=r"(?s)ip-adapter_sd15\.safetensors is damaged.*Download it"
    ):
        load_ipadapter(path)
