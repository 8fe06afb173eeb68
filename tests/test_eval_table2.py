"""Table 2 end to end: three tiny checkpoints trained by `training.train` (joint, text_only, head_only),
the `table2` command over rows #1-#6, per-item provenance from the manifests, and a report that names
every row and counts the items whose refinement fell back to the raw instruction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mindedit_core.mllm import PassCalls, PassOptions, PassRequest, PassResult, require_vision_head
from training.evaluate.__main__ import main
from training.evaluate.ablation_rows import TABLE2_ROWS, classify_run
from training.evaluate.run_files import read_manifest


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def three_checkpoints(training_inputs, tmp_path_factory) -> dict[str, Path]:
    """One short training run per variant on the tiny model; returns the output folders."""
    from accelerate.state import AcceleratorState

    from training.config import build_config
    from training.train import train

    root = tmp_path_factory.mktemp("table2-checkpoints")
    outs = {}
    for variant in ("joint", "text_only", "head_only"):
        cfg = build_config(
            variant,
            ["split=all"],
            model=str(training_inputs["model"]),
            data=str(training_inputs["data"]),
            refined=str(training_inputs["refined"]),
            targets=str(training_inputs["targets"]),
            output_dir=str(root / variant),
            precision="fp32",
            batch_size=2,
            grad_accum=1,
            max_steps=1,
            limit=2,
            lora_r=4,
            lora_alpha=8,
            progress=False,
            tensorboard=False,
            gradient_checkpointing=False,
        )
        train(cfg)
        AcceleratorState._reset_state(reset_partial_state=True)
        outs[variant] = root / variant
    return outs


def test_classify_run_follows_the_recorded_variants():
    def src(variant):
        return {"mllm": "/m", "checkpoint": f"/c/{variant}", "variant": variant}

    refined_insight = {"prompt": "refined", "image_embed": "insight"}
    assert (
        classify_run(refined_insight, {"prompt": src("text_only"), "insight": src("head_only")}).exp == "#3"
    )
    assert classify_run(refined_insight, {"prompt": src("joint"), "insight": src("head-only")}).exp == "#4"
    assert classify_run(refined_insight, {"prompt": src("joint"), "insight": src("joint")}).exp == "#6 (Ours)"
    assert classify_run({"prompt": "refined", "image_embed": "none"}, {"prompt": src("joint")}).exp == "#1"
    assert classify_run({"prompt": "raw", "image_embed": "insight"}, {"insight": src("joint")}).exp == "#2"
    assert classify_run({"prompt": "raw", "image_embed": "none"}, {}) is None  # plain SD1.5
    assert classify_run({"prompt": "raw", "image_embed": "source_clip"}, {}) is None  # IP-Adapter baseline
    assert classify_run(refined_insight, {"prompt": {"mllm": "/m"}, "insight": src("joint")}) is None


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_table2_command_runs_six_rows_from_three_checkpoints(
    three_checkpoints,
    training_inputs,
    sd15_diffusers_dir,
    eval_ipadapter_file,
    eval_humanedit_dir,
    tmp_path,
    capsys,
):
    out = tmp_path / "table2"
    common = [
        "table2", "--data", str(eval_humanedit_dir), "--format", "humanedit", "--limit", "2",
        "--sd-model", str(sd15_diffusers_dir), "--ipadapter", str(eval_ipadapter_file),
        "--mllm", str(training_inputs["model"]), "--preset", "quick", "--steps", "2", "--resolution", "64",
        "--max-new-tokens", "8", "--device", "cpu", "--metrics", "psnr", "ssim", "--no-progress",
        "--joint", str(three_checkpoints["joint"]), "--text-only", str(three_checkpoints["text_only"]),
    ]  # fmt: skip
    # A checkpoint in the wrong role is refused, naming the flag, the folder and both variants.
    assert main([*common, "--head-only", str(three_checkpoints["joint"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--head-only" in err and "records variant 'joint'" in err and "'head_only'" in err

    # The checkpoints were trained with split=all on rows with the evaluated ids: refused, then allowed.
    assert main([*common, "--head-only", str(three_checkpoints["head_only"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        "Refusing to evaluate on training data" in err
        and "split=all" in err
        and "--allow-split-overlap" in err
    )
    common.append("--allow-split-overlap")
    assert main([*common, "--head-only", str(three_checkpoints["head_only"]), "--out", str(out)]) == 0
    ckpt = {v: str((three_checkpoints[v] / "checkpoint").resolve()) for v in three_checkpoints}
    expected = {  # row folder -> (prompts from, v_insight from)
        "exp1": ("joint", None),
        "exp2": (None, "joint"),
        "exp3": ("text_only", "head_only"),
        "exp4": ("joint", "head_only"),
        "exp5": ("text_only", "joint"),
        "exp6": ("joint", "joint"),
    }
    for folder, (prompt_from, insight_from) in expected.items():
        items = read_manifest(out / folder)
        assert len(items) == 2, folder
        for item in items.values():
            prompt, insight = item["prompt_source"], item["insight_source"]
            if prompt_from:
                assert (prompt["checkpoint"], prompt["variant"]) == (ckpt[prompt_from], prompt_from), folder
                assert item["prompt_origin"] == "mllm"
            else:
                assert (
                    prompt is None
                    and item["prompt_origin"] == "instruction"
                    and item["positive"] == item["instruction"]
                )
            if insight_from:
                assert (insight["checkpoint"], insight["variant"]) == (ckpt[insight_from], insight_from), (
                    folder
                )
                assert item["image_embed"] == "insight"
            else:
                assert insight is None and item["image_embed"] == "none"
    # The same edit settings for every row, recorded per run.
    infos = [json.loads((out / f / "run.json").read_text()) for f in expected]
    assert {(i["diffusion"]["steps"], i["diffusion"]["resolution"], i["max_new_tokens"]) for i in infos} == {
        (2, 64, 8)
    }

    report = (out / "report" / "report.md").read_text()
    table = report.split("## Ablations (paper Table 2 layout, Synthetic fixture (not a benchmark))")[1]
    table = table.split("## ")[0]
    ours = [line for line in table.splitlines() if "(ours, measured" in line]
    assert [line.split("**")[1] for line in ours] == [row.exp for row in TABLE2_ROWS]
    # Random tiny weights: every refinement falls back, and the report says so for each refined row.
    for line in ours:
        fallback = line.rstrip(" |").rsplit("|", 1)[1].strip()
        assert fallback in ("**2 / 2 ⚠**", "n/a (raw instruction)"), line
    assert sum("n/a (raw instruction)" in line for line in ours) == 1  # only #2 has no refined prompts
    assert report.count("> **WARNING: 2 of 2 items of") == 5
    assert (
        "I (`text_only/checkpoint`, text_only)" in ours[2]
        and "I (`head_only/checkpoint`, head_only)" in ours[2]
    )
    assert "| 64 px | 2 | 7.5 |" in report  # generation settings section
    assert "(reported, paper Table" not in report  # a fixture is never beside the paper's numbers
    assert all("[synthetic fixture; ⚠ trained on evaluated items]" in line for line in ours), ours


class GibberishMLLM(PassCalls):
    """A `MindEditMLLMLike` whose answers never parse (tests/test_mllm_protocol.py checks it)."""

    has_head = False
    negative_embeds = None
    default_options = PassOptions()

    def torch_modules(self) -> dict:
        return {}

    def run(self, request: PassRequest) -> PassResult:
        from mindedit_core.prompting import parse_refinement

        if request.wants_embeds:
            require_vision_head(self)
        # the core parser's own fallback
        return PassResult(parse_refinement("qzx vlorp", request.instruction), None, "qzx vlorp")


@pytest.mark.usefixtures("one_torch_thread")
def test_a_refinement_that_falls_back_is_reported_loudly(tmp_path, sd15_diffusers_dir, eval_humanedit_dir):
    """Any MLLM whose answer cannot be parsed: the manifest flags each item and the report says how many."""
    from training.evaluate import Conditioner, DiffusionSettings, EditPipelines, make_run_info, run_generate
    from training.evaluate.conditioning import PRESETS
    from training.evaluate.report import build_report
    from training.evaluate.score import ScoreSettings, score_run
    from training.evaluate.selection import DatasetSelection, load_selection

    selection = DatasetSelection(format="humanedit", path=str(eval_humanedit_dir), limit=3)
    settings = DiffusionSettings(model=str(sd15_diffusers_dir), steps=1, resolution=64)
    method = PRESETS["refined_only"]
    info = make_run_info(method, settings.to_json(), selection.to_json(), 0, sources={"prompt": {
        "mllm": "/m", "checkpoint": "/c/joint", "variant": "joint"}, "insight": None})  # fmt: skip
    run = tmp_path / "refined_only"
    conditioner = Conditioner(method, mllm=GibberishMLLM())
    run_generate(load_selection(selection), EditPipelines(settings), conditioner, run, run_info=info)
    items = read_manifest(run)
    assert all(i["prompt_fallback"] and i["positive"] == i["instruction"] for i in items.values())
    score_run(run, ScoreSettings(metrics=("psnr",), resolution=64), selection=selection)
    report = build_report([run], tmp_path / "report").read_text()
    assert "> **WARNING: 3 of 3 items of `refined_only [synthetic fixture]` fell back to the raw" in report
    assert "**3 / 3 ⚠**" in report and "| **#1** (ours, measured" in report  # a Table 2 row, flagged


def test_table2_command_runs_on_an_sdxl_base_with_the_same_heads(
    three_checkpoints, training_inputs, eval_humanedit_dir, fixture_cache, tmp_path
):
    """The same three checkpoints (the same v_insight) with an SDXL base: the SDXL pipelines and the
    SDXL ViT-H adapter, six rows, one item each."""
    from devkit.fixtures.sdxl_diffusers import build_sdxl_diffusers, build_sdxl_ipadapter

    out = tmp_path / "table2-sdxl"
    args = [
        "table2", "--data", str(eval_humanedit_dir), "--format", "humanedit", "--limit", "1",
        "--sd-model", str(build_sdxl_diffusers(fixture_cache)),
        "--ipadapter", str(build_sdxl_ipadapter(fixture_cache, kind="plain")),
        "--mllm", str(training_inputs["model"]), "--preset", "quick", "--steps", "2", "--resolution", "64",
        "--max-new-tokens", "8", "--device", "cpu", "--metrics", "psnr", "--no-progress",
        "--joint", str(three_checkpoints["joint"]), "--text-only", str(three_checkpoints["text_only"]),
        "--head-only", str(three_checkpoints["head_only"]), "--out", str(out),
        "--allow-split-overlap",  # the tiny checkpoints trained on every record (as in the SD1.5 test)
    ]  # fmt: skip
    assert main(args) == 0
    for folder in ("exp2", "exp6"):  # rows whose v_insight reaches the SDXL IP-Adapter
        info = json.loads((out / folder / "run.json").read_text())
        assert "StableDiffusionXLImg2ImgPipeline" in json.dumps(info), folder
        (item,) = read_manifest(out / folder).values()
        assert item["image_embed"] == "insight"
