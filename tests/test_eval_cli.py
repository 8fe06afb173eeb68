"""End to end through the command line on the tiny fixtures: ``generate`` (the real tiny MLLM +
checkpoint for MIND-Edit, and the plain SD1.5 baseline) -> ``score`` (all four metrics) -> ``report``
(Table 1 layout with reported numbers, per-type table, conventions, plots)."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from training.evaluate.__main__ import main
from training.evaluate.generate import RunMismatchError
from training.evaluate.run_files import read_manifest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def tiny_mllm(fixture_cache):
    from devkit.fixtures.llava_onevision import tiny_llava_onevision, tiny_mindedit_checkpoint

    return tiny_llava_onevision(fixture_cache), tiny_mindedit_checkpoint(fixture_cache, kind="plain")


def test_generate_score_report(
    tmp_path,
    tiny_mllm,
    sd15_diffusers_dir,
    eval_ipadapter_file,
    eval_humanedit_dir,
    eval_clip_vision_dir,
    lpips_random_backbone,
    capsys,
):
    model_dir, checkpoint_dir = tiny_mllm
    common = [
        "--data", str(eval_humanedit_dir), "--format", "humanedit", "--limit", "3",
        "--sd-model", str(sd15_diffusers_dir), "--steps", "2", "--resolution", "64", "--device", "cpu",
    ]  # fmt: skip
    ours, baseline = tmp_path / "mind_edit", tmp_path / "sd15"
    code = main(
        ["generate", *common, "--out", str(ours), "--method", "mind_edit", "--ipadapter", str(eval_ipadapter_file),
         "--mllm", str(model_dir), "--checkpoint", str(checkpoint_dir), "--max-new-tokens", "12"]
    )  # fmt: skip
    assert code == 0
    assert main(["generate", *common, "--out", str(baseline), "--method", "sd15"]) == 0
    rows = read_manifest(ours)
    assert len(rows) == 3 and all(
        r["prompt_origin"] == "mllm" and r["image_embed"] == "insight" for r in rows.values()
    )
    run_info = json.loads((ours / "run.json").read_text())
    assert run_info["diffusion"]["steps"] == 2 and run_info["pipelines"]["ipadapter"]["kind"] == "plain"

    # Re-running the finished baseline does nothing; another method in the same folder is refused.
    mtimes = {p.name: p.stat().st_mtime_ns for p in (baseline / "images").iterdir()}
    assert main(["generate", *common, "--out", str(baseline), "--method", "sd15"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (baseline / "images").iterdir()} == mtimes
    capsys.readouterr()
    code = main(
        ["generate", *common, "--out", str(baseline), "--method", "sd15", "--seed", "3", "--name", "x"]
    )
    assert code == 2 and "RunMismatchError" in capsys.readouterr().err
    with pytest.raises(RunMismatchError, match="method"):  # -v: the traceback for debugging
        main(
            [
                "-v",
                "generate",
                *common,
                "--out",
                str(baseline),
                "--method",
                "sd15",
                "--seed",
                "3",
                "--name",
                "x",
            ]
        )

    code = main(
        ["score", "--run", str(ours), str(baseline), "--clip-model", str(eval_clip_vision_dir),
         "--lpips-backbone-file", str(lpips_random_backbone), "--masked", "--thumbs", "2"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((ours / "summary.json").read_text())
    assert summary["scored"] == 3 and summary["selected"] == 3
    for metric in ("clip_i", "lpips", "psnr", "ssim", "psnr_keep", "ssim_keep"):
        assert summary["overall"][metric] is not None, metric
    assert -1 <= summary["overall"]["clip_i"] <= 1 and summary["overall"]["lpips"] >= 0
    scores = [json.loads(line) for line in (ours / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 3
    mean_psnr = sum(s["psnr"] for s in scores) / 3
    assert math.isclose(summary["overall"]["psnr"], mean_psnr, rel_tol=1e-12)
    assert set(summary["by_type"]) == {s["edit_type"] for s in scores}
    assert "64x64" in summary["conventions"]["resolution"]  # the generation's, without --resolution

    report_dir = tmp_path / "report"
    assert main(["report", "--runs", str(ours), str(baseline), "--out", str(report_dir)]) == 0
    text = (report_dir / "report.md").read_text()
    # The tiny fixtures are synthetic: labelled so in every table, never beside the paper's numbers.
    assert "**mind_edit [synthetic fixture]** (ours, measured)" in text
    assert "**sd15 [synthetic fixture]** (ours, measured)" in text
    assert "(reported, paper Table" not in text and "> **SYNTHETIC FIXTURE: `mind_edit" in text
    assert "| **#6 (Ours)** (ours, measured: `mind_edit [synthetic fixture]`)" in text  # a joint checkpoint
    assert "> **WARNING: 3 of 3 items of `mind_edit [synthetic fixture]` fell back to the raw" in text
    assert "greedy (do_sample=False), max 12 new tokens" in text  # provenance: the MLLM's decoding
    assert json.loads((report_dir / "results.json").read_text())["runs"][0]["synthetic_fixture"]
    assert f"{summary['overall']['psnr']:.4f}" in text
    assert "## Per edit type" in text and "## Metric conventions" in text and "sigma 1.5" in text
    for name in ("synthetic_per_type.png", "synthetic_distributions.png", "synthetic_grid.png"):
        path = report_dir / "plots" / name
        assert f"plots/{name}" in text
        with Image.open(path) as image:
            assert image.size[0] > 200 and image.size[1] > 150


def test_report_without_scores_says_what_to_run(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["report", "--runs", str(tmp_path / "run"), "--out", str(tmp_path / "r")]) == 2
    assert "training.evaluate score" in capsys.readouterr().err


def test_score_without_clip_model_says_what_to_pass(tmp_path, capsys):
    assert main(["score", "--run", str(tmp_path)]) == 2
    assert "--clip-model" in capsys.readouterr().err
