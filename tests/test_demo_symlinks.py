"""A ComfyUI models/ folder whose entries are symlinks (to hash-named blobs, as a hub cache keeps them)
works in the demo: each model is listed under the link's own name, the name the demo puts in the
loader widgets (it used to be listed under the target's name: "Value not in list")."""

from __future__ import annotations

from devkit import demo
from devkit.comfyui_runtime.server import ComfyUIServer


def _linked_models_dir(tmp_path):
    blobs = tmp_path / "blobs"
    (blobs / "llm-snapshot").mkdir(parents=True)
    (blobs / "llm-snapshot" / "config.json").write_text("{}")
    (blobs / "ckpt-snapshot").mkdir()
    (blobs / "ckpt-snapshot" / "mindedit.json").write_text("{}")
    (blobs / "9f8e7d6c").write_bytes(b"sd")  # no suffix: only the link's name says .safetensors
    (blobs / "1a2b3c4d").write_bytes(b"ip")
    root = tmp_path / "models"
    links = {
        "checkpoints/tiny-sd15.safetensors": blobs / "9f8e7d6c",
        "ipadapter/ip-adapter_sd15.safetensors": blobs / "1a2b3c4d",
        "LLM/llava-onevision-qwen2-0.5b-ov-hf": blobs / "llm-snapshot",
        "mindedit/my-checkpoint": blobs / "ckpt-snapshot",
    }
    for name, target in links.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(target, target_is_directory=target.is_dir())
    return root


def test_symlinked_models_are_listed_under_the_widget_names(tmp_path, monkeypatch):
    for var in ("MINDEDIT_SD15", "MINDEDIT_LLM", "MINDEDIT_CHECKPOINT", "MINDEDIT_IPADAPTER"):
        monkeypatch.delenv(var, raising=False)
    models = demo.configured_models(_linked_models_dir(tmp_path))
    widgets = {  # what the demo sets in the workflow's loader widgets
        "checkpoints": models.checkpoint.name,
        "ipadapter": models.ipadapter.name,
        "LLM": models.llm_dir.name,
        "mindedit": models.mindedit_dir.name,
    }
    assert widgets == {
        "checkpoints": "tiny-sd15.safetensors",
        "ipadapter": "ip-adapter_sd15.safetensors",
        "LLM": "llava-onevision-qwen2-0.5b-ov-hf",
        "mindedit": "my-checkpoint",
    }
    server = ComfyUIServer(base_dir=tmp_path / "comfy", models=models.comfy_models(), include_pack=False)
    server._prepare_base()  # the layout ComfyUI starts on (no process is started)
    for folder, widget in widgets.items():
        listed = sorted(p.name for p in (tmp_path / "comfy" / "models" / folder).iterdir())
        assert widget in listed, (folder, listed)
        paths = {"checkpoints": models.checkpoint, "ipadapter": models.ipadapter}
        paths.update(LLM=models.llm_dir, mindedit=models.mindedit_dir)
        assert (tmp_path / "comfy" / "models" / folder / widget).resolve() == paths[folder].resolve()


def test_add_model_returns_the_listed_name_for_a_link(tmp_path):
    target = tmp_path / "blob"
    target.write_bytes(b"x")
    link = tmp_path / "model.safetensors"
    link.symlink_to(target)
    server = ComfyUIServer(base_dir=tmp_path / "comfy", include_pack=False)
    server._prepare_base()
    assert server.add_model("checkpoints", link) == "model.safetensors"
    assert (tmp_path / "comfy" / "models" / "checkpoints" / "model.safetensors").resolve() == target
    assert server.add_model("checkpoints", link, "renamed.safetensors") == "renamed.safetensors"
