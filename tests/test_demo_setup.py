"""The demo's set-up logic, offline: choosing real models from a ComfyUI models/ folder, the clear
errors when something is missing, the sample inputs, and the command line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from devkit import demo


def _models_dir(
    root, *, llm=("llava-a",), ckpts=("mindedit-a",), sd=("sd15.safetensors",), ipa=("ip.safetensors",)
):
    (root / "LLM").mkdir(parents=True, exist_ok=True)
    (root / "mindedit").mkdir(parents=True, exist_ok=True)
    for name in llm:
        (root / "LLM" / name).mkdir(parents=True)
        (root / "LLM" / name / "config.json").write_text("{}")
    for name in ckpts:
        (root / "mindedit" / name).mkdir(parents=True)
        (root / "mindedit" / name / "mindedit.json").write_text("{}")
    (root / "checkpoints").mkdir(exist_ok=True)
    for name in sd:
        (root / "checkpoints" / name).write_bytes(b"x")
    (root / "ipadapter").mkdir(exist_ok=True)
    for name in ipa:
        (root / "ipadapter" / name).write_bytes(b"x")
    return root


def test_configured_models_picks_one_of_each_folder(tmp_path, monkeypatch):
    for var in ("MINDEDIT_SD15", "MINDEDIT_LLM", "MINDEDIT_CHECKPOINT", "MINDEDIT_IPADAPTER"):
        monkeypatch.delenv(var, raising=False)
    root = _models_dir(tmp_path, llm=("llava-a", "llava-b"))
    (root / "LLM" / "not-a-model").mkdir()
    models = demo.configured_models(root)
    assert not models.tiny
    assert models.llm_dir.name == "llava-a" and models.mindedit_dir.name == "mindedit-a"
    assert models.checkpoint.name == "sd15.safetensors" and models.ipadapter.name == "ip.safetensors"
    monkeypatch.setenv("MINDEDIT_LLM", "llava-b")
    assert demo.configured_models(root).llm_dir.name == "llava-b"
    assert set(models.comfy_models()) == {"checkpoints", "LLM", "mindedit", "ipadapter"}


def test_placeholders_and_other_files_beside_the_models_are_not_picked(tmp_path, monkeypatch):
    """A real ComfyUI models/ folder ships 'put_checkpoints_here' (sorting before most names)."""
    for var in ("MINDEDIT_SD15", "MINDEDIT_LLM", "MINDEDIT_CHECKPOINT", "MINDEDIT_IPADAPTER"):
        monkeypatch.delenv(var, raising=False)
    root = _models_dir(tmp_path, sd=("v1-5-pruned-emaonly.safetensors",), ipa=("ip-adapter_sd15.bin",))
    (root / "checkpoints" / "put_checkpoints_here").write_bytes(b"")
    (root / "ipadapter" / "README.txt").write_text("x")
    models = demo.configured_models(root)
    assert models.checkpoint.name == "v1-5-pruned-emaonly.safetensors"
    assert models.ipadapter.name == "ip-adapter_sd15.bin"
    (root / "checkpoints" / "v1-5-pruned-emaonly.safetensors").unlink()
    with pytest.raises(demo.DemoError, match=r"SD1.5 checkpoint: nothing usable in .*checkpoints"):
        demo.configured_models(root)


def test_a_missing_folder_or_model_names_what_to_put_where(tmp_path, monkeypatch):
    for var in ("MINDEDIT_SD15", "MINDEDIT_LLM", "MINDEDIT_CHECKPOINT", "MINDEDIT_IPADAPTER"):
        monkeypatch.delenv(var, raising=False)
    root = _models_dir(tmp_path, llm=())
    with pytest.raises(demo.DemoError, match=r"VLM folder: nothing usable in .*LLM.*config\.json"):
        demo.configured_models(root)
    with pytest.raises(demo.DemoError, match=r"checkpoints does not exist"):
        demo.configured_models(tmp_path / "elsewhere")
    (root / "LLM" / "v").mkdir()
    (root / "LLM" / "v" / "config.json").write_text("{}")
    monkeypatch.setenv("MINDEDIT_CHECKPOINT", "gone")
    with pytest.raises(demo.DemoError, match=r"\$MINDEDIT_CHECKPOINT='gone'.*does not exist"):
        demo.configured_models(root)


def test_public_weights_alone_run_the_refine_only_workflow_and_say_why(tmp_path, monkeypatch):
    """No MIND-Edit checkpoint and no IP-Adapter (day one): not an error, the MIND-Edit workflows skip."""
    from devkit import build_workflows as wf

    for var in ("MINDEDIT_SD15", "MINDEDIT_LLM", "MINDEDIT_CHECKPOINT", "MINDEDIT_IPADAPTER"):
        monkeypatch.delenv(var, raising=False)
    root = _models_dir(tmp_path, ckpts=(), ipa=())
    models = demo.configured_models(root)
    assert models.mindedit_dir is None and models.ipadapter is None
    assert set(models.comfy_models()) == {"checkpoints", "LLM"}
    runs, skipped = demo.demo_runs(models, "src.png", "mask.png", "painted.png", None)
    assert {run.workflow for run in runs} == {wf.REFINE_ONLY_WORKFLOW}
    assert "models/mindedit" in skipped and "models/ipadapter" in skipped
    assert [run.source_name for run in runs] == ["painted.png", "src.png"]
    full = demo.configured_models(_models_dir(tmp_path / "full"))
    runs, skipped = demo.demo_runs(full, "src.png", "mask.png", "painted.png", "add snow")
    assert skipped is None and [run.workflow for run in runs][:2] == [wf.MASKED_WORKFLOW, wf.EDIT_WORKFLOW]
    assert {run.instruction for run in runs} == {"add snow"}


def test_the_painted_source_carries_the_mask_in_its_alpha(tmp_path):
    source, mask = demo.sample_inputs(tmp_path, 64)
    painted = Image.open(demo.painted_source(tmp_path, source, mask))
    assert painted.mode == "RGBA" and painted.size == (64, 64)
    alpha = np.asarray(painted)[..., 3]
    edit = np.asarray(Image.open(mask)) > 127
    assert (alpha[edit] == 0).all() and (alpha[~edit] == 255).all(), "MaskEditor: transparent = edit"
    assert np.array_equal(np.asarray(painted)[..., :3], np.asarray(Image.open(source)))


def test_sample_inputs_are_scaled_and_the_mask_stays_binary(tmp_path):
    source, mask = demo.sample_inputs(tmp_path, 64)
    assert Image.open(source).size == (64, 64) and Image.open(source).mode == "RGB"
    values = np.unique(np.asarray(Image.open(mask)))
    assert set(values.tolist()) <= {0, 255} and len(values) == 2
    assert demo.sample_inputs(tmp_path, 0) == (demo.SAMPLE_SOURCE, demo.SAMPLE_MASK)


def test_cli_defaults():
    args = demo.parse_args([])
    assert args.steps is None and args.size is None and not args.thumbnails
    assert demo.parse_args(["--steps", "3", "--thumbnails"]).steps == 3


def test_main_reports_setup_errors_with_exit_code_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MINDEDIT_MODELS_DIR", raising=False)
    code = demo.main(["--models-dir", str(tmp_path / "nothing-here"), "--output", str(tmp_path / "out")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_thumbnail_is_source_and_result_side_by_side(tmp_path):
    import io

    result = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 0, 0)).save(result, format="PNG")
    thumb = demo.write_thumbnail(demo.SAMPLE_SOURCE, result.getvalue(), tmp_path / "t.jpg", height=64)
    image = Image.open(thumb)
    assert image.height == 64 and image.width == 64 + 8 + 64
    right = np.asarray(image.convert("RGB"))[:, -20:]
    assert right[..., 0].mean() > 200 and right[..., 1].mean() < 60


def test_with_sdxl_models_the_demo_adds_the_sdxl_masked_run_and_links_both_families(tmp_path):
    """With SDXL models (tiny ones by default) the SDXL masked workflow runs with the same head, its
    checkpoint and IP-Adapter linked beside SD1.5's; ``all_sdxl`` (--sdxl) adds the SDXL mask-free and
    refine-only runs; without SDXL models no SDXL run is planned."""
    import dataclasses

    from devkit import build_workflows as wf

    full = demo.configured_models(_models_dir(tmp_path / "full"))
    assert wf.SDXL_MASKED_WORKFLOW not in {r.workflow for r in demo.demo_runs(full, "s", "m", "p", None)[0]}
    ckpt, ipa = tmp_path / "sdxl.safetensors", tmp_path / "ip-adapter_sdxl_vit-h.safetensors"
    with_sdxl = dataclasses.replace(full, sdxl_checkpoint=ckpt, sdxl_ipadapter=ipa)
    runs, _ = demo.demo_runs(with_sdxl, "s", "m", "p", None)
    (sdxl,) = [r for r in runs if r.workflow in wf.SDXL_COUNTERPARTS]
    assert sdxl.workflow == wf.SDXL_MASKED_WORKFLOW and sdxl.mask_name == "m"
    linked = with_sdxl.comfy_models()
    assert ckpt in linked["checkpoints"] and ipa in linked["ipadapter"] and len(linked["checkpoints"]) == 2
    assert with_sdxl.for_family("sdxl") == (ckpt, ipa)
    every = {r.workflow: r for r in demo.demo_runs(with_sdxl, "s", "m", "p", None, all_sdxl=True)[0]}
    assert set(wf.SDXL_COUNTERPARTS) <= set(every)
    assert every[wf.SDXL_REFINE_ONLY_WORKFLOW].source_name == "p"  # the mask painted on the source
    assert every[wf.SDXL_EDIT_WORKFLOW].mask_name is None


@pytest.mark.parametrize(
    ("argv", "builds_sdxl", "all_sdxl"),
    [([], True, False), (["--no-sdxl"], False, False), (["--sdxl"], True, True)],
)
def test_tiny_demo_runs_the_sdxl_masked_workflow_unless_told_not_to(
    tmp_path, monkeypatch, argv, builds_sdxl, all_sdxl
):
    monkeypatch.delenv("MINDEDIT_MODELS_DIR", raising=False)
    asked = {}

    def fake_tiny_models(*, sdxl):
        asked["sdxl"] = sdxl
        raise demo.DemoError("stop before ComfyUI starts")

    monkeypatch.setattr(demo, "tiny_models", fake_tiny_models)
    args = demo.parse_args([*argv, "--output", str(tmp_path)])
    assert args.sdxl == all_sdxl
    assert demo.main([*argv, "--output", str(tmp_path)]) == 2
    assert asked == {"sdxl": builds_sdxl}


def test_sdxl_and_no_sdxl_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        demo.parse_args(["--sdxl", "--no-sdxl"])
    assert "not allowed with" in capsys.readouterr().err


def test_sdxl_thumbnails_carry_an_sdxl_mark(tmp_path):
    import io

    from devkit import build_workflows as wf

    assert {demo.thumbnail_badge(name) for name in wf.SDXL_COUNTERPARTS} == {"SDXL"}
    assert {demo.thumbnail_badge(name) for name in wf.SDXL_COUNTERPARTS.values()} == {None}
    result = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 0, 0)).save(result, format="PNG")
    plain = demo.write_thumbnail(demo.SAMPLE_SOURCE, result.getvalue(), tmp_path / "a.jpg", height=128)
    marked = demo.write_thumbnail(
        demo.SAMPLE_SOURCE, result.getvalue(), tmp_path / "b.jpg", height=128, badge="SDXL"
    )
    a, b = (np.asarray(Image.open(t).convert("L"), dtype=int) for t in (plain, marked))
    corner = (slice(0, 20), slice(0, 40))
    assert np.abs(a[corner] - b[corner]).mean() > 20, "the mark is drawn in the top-left corner"
    assert np.abs(a[64:, 64:] - b[64:, 64:]).max() <= 8, "and nowhere else"
