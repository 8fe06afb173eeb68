"""Evaluation does not pass training data off as test data, and says what every number rests on:

- a checkpoint trained on the evaluated items (``split=all``, or a split whose train part overlaps)
  is refused by ``generate`` (one line with the fix) unless ``--allow-split-overlap``, and the report
  marks such a run in every table;
- the report and ``results.json`` carry the provenance (data path and size, split manifest sha256,
  MLLM decoding mode, each checkpoint's seed, steps, lr and training data);
- runs on a synthetic fixture are labelled so and never printed beside the paper's numbers.
"""

from __future__ import annotations

import json
import shutil

import pytest
from fixtures_training import tiny_config

from training.data import make_split
from training.data.synthetic import MARKER, is_synthetic
from training.evaluate.provenance import SplitOverlapError, check_split_overlap, training_summary

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(training_inputs, tmp_path_factory):
    """Two head_only checkpoints of one step: one trained with split=all (on the first 4 records), one
    on the train part of a manifest."""
    from training.data import load_humanedit
    from training.train import train

    root = tmp_path_factory.mktemp("provenance")
    ids = [r.id for r in load_humanedit(training_inputs["data"], cache_dir=root / "hf")]
    manifest = make_split(ids, seed=3, test_size=4, train_size=None)
    manifest.save(root / "split.json")
    common = dict(variant="head_only", max_steps=1, gradient_checkpointing=False, seed=7, lr=3e-4)
    train(tiny_config(training_inputs, root / "all", limit=4, **common))
    train(tiny_config(training_inputs, root / "split", split=str(root / "split.json"), **common))
    return {"root": root, "ids": ids, "manifest": manifest, "model": str(training_inputs["model"])}


def _source(trained, name: str) -> dict:
    return {
        "mllm": trained["model"],
        "checkpoint": str(trained["root"] / name / "checkpoint"),
        "variant": "head_only",
    }


def test_checkpoint_records_what_it_was_trained_on(trained, training_inputs):
    summary = training_summary(_source(trained, "split"))
    assert summary["known"] and summary["seed"] == 7 and summary["steps"] == 1 and summary["lr"] == 3e-4
    assert summary["dataset_size"] == len(trained["ids"]) == training_inputs["num_records"]
    assert summary["num_trained"] == len(trained["manifest"].train)
    assert (
        summary["split"] == str((trained["root"] / "split.json").resolve()) and summary["subset"] == "train"
    )
    assert len(summary["split_sha256"]) == 64
    assert training_summary(_source(trained, "all"))["split"] == "all"


def test_training_data_overlapping_the_evaluated_items_is_refused(trained, training_inputs):
    data = str(training_inputs["data"])
    test, train_ids = trained["manifest"].test, trained["manifest"].train
    split_source = {"insight": _source(trained, "split")}
    assert (
        check_split_overlap(split_source, test, "humanedit", data, allow=False) == {}
    )  # the test split: fine
    with pytest.raises(SplitOverlapError, match=r"2 of the 2 items.*--allow-split-overlap"):
        check_split_overlap(split_source, train_ids[:2], "humanedit", data, allow=False)
    all_source = {"prompt": _source(trained, "all")}
    found = check_split_overlap(all_source, test + trained["ids"][:4], "humanedit", data, allow=True)
    assert found["prompt"]["count"] == 4  # the 4 records it trained on (limit=4), test ids included
    assert check_split_overlap(all_source, test, "jsonl", data, allow=False) == {}  # another dataset


def test_old_checkpoint_trained_with_split_all_is_refused(tmp_path, training_inputs):
    checkpoint = tmp_path / "old"
    checkpoint.mkdir()
    extra = {
        "train": {"split": "all", "data": str(training_inputs["data"]), "data_format": "humanedit", "seed": 0}
    }
    (checkpoint / "mindedit.json").write_text(json.dumps({"extra": extra}))
    with pytest.raises(SplitOverlapError, match="split=all"):
        check_split_overlap(
            {"prompt": {"mllm": "m", "checkpoint": str(checkpoint)}}, ["a"], "humanedit", "x", allow=False
        )


def test_generate_refuses_in_one_line(trained, sd15_diffusers_dir, capsys, tmp_path):
    from training.evaluate.__main__ import main

    code = main(
        ["generate", "--data", str(_data_dir(trained)), "--format", "humanedit", "--limit", "2",
           "--sd-model", str(sd15_diffusers_dir), "--method", "insight_only", "--ipadapter", "unused.bin",
           "--mllm", trained["model"], "--checkpoint", str(trained["root"] / "all"), "--out", str(tmp_path / "r")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert (
        "SplitOverlapError: Refusing to evaluate on training data" in err and "--allow-split-overlap" in err
    )
    assert not (tmp_path / "r" / "run.json").exists()


def _data_dir(trained):
    return json.loads((trained["root"] / "all" / "train_data.json").read_text())["data"]["path"]


def _scored_run(folder, data_dir, sd_dir, sources, *, allow, manifest=None):
    """A refined_only run of 3 items with a stub MLLM, scored (PSNR), with the provenance generate records."""
    from fixtures_eval import StubMLLM

    from training.evaluate import Conditioner, DiffusionSettings, EditPipelines, make_run_info, run_generate
    from training.evaluate.conditioning import PRESETS
    from training.evaluate.provenance import dataset_provenance, decoding_of
    from training.evaluate.score import ScoreSettings, score_run
    from training.evaluate.selection import DatasetSelection, load_selection

    selection = DatasetSelection(format="humanedit", path=str(data_dir), limit=3, split_manifest=manifest)
    stats: dict = {}
    records = load_selection(selection, stats)
    settings = DiffusionSettings(model=str(sd_dir), steps=1, resolution=64)
    overlaps = check_split_overlap(sources, [r.id for r in records], "humanedit", str(data_dir), allow=allow)
    provenance = {
        "dataset": dataset_provenance(selection.to_json(), stats["num_records"], len(records)),
        "decoding": decoding_of(StubMLLM(), 48),
        "training": {role: training_summary(s) for role, s in sources.items()},
        "sd_model_synthetic": is_synthetic(sd_dir),
    }
    extra = {"provenance": provenance, "split_overlap": overlaps or None}
    info = make_run_info(
        PRESETS["refined_only"], settings.to_json(), selection.to_json(), 0, extra, sources=sources
    )
    conditioner = Conditioner(PRESETS["refined_only"], mllm=StubMLLM())
    run_generate(records, EditPipelines(settings), conditioner, folder, run_info=info)
    score_run(folder, ScoreSettings(metrics=("psnr",), resolution=64), selection=selection)
    return folder


def test_report_marks_overlap_and_synthetic_runs_and_records_provenance(
    trained, sd15_diffusers_dir, tmp_path
):
    from training.evaluate.report import build_report

    data = _data_dir(trained)
    assert is_synthetic(data) and is_synthetic(sd15_diffusers_dir)  # the fixtures are marked
    sources = {"prompt": _source(trained, "all"), "insight": None}
    run = _scored_run(tmp_path / "run", data, sd15_diffusers_dir, sources, allow=True)
    report = build_report([run], tmp_path / "report").read_text()
    label = "refined_only [synthetic fixture; ⚠ trained on evaluated items]"
    assert f"| **{label}** (ours, measured) |" in report  # Table 1
    assert f"| {label} | refined_only (refined, none) |" in report  # runs table
    assert "(reported, paper Table" not in report  # never beside the paper's numbers
    assert (
        "Synthetic fixture (not a benchmark)" in report and "HumanEdit" not in report.split("## Per edit")[0]
    )
    assert "> **SYNTHETIC FIXTURE:" in report and "> **WARNING: train/test overlap" in report
    provenance = report.split("## Provenance")[1].split("## ")[0]
    assert "greedy (do_sample=False), max 48 new tokens" in provenance
    assert "| 7 | 1 | 0.0003 |" in provenance  # training seed, steps, lr of the checkpoint
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    (entry,) = results["runs"]
    assert entry["synthetic_fixture"] and entry["split_overlap"]["prompt"]["count"] == 3
    assert entry["provenance"]["dataset"]["num_records"] == len(trained["ids"])
    assert entry["provenance"]["decoding"]["mode"].startswith("greedy")
    assert entry["provenance"]["training"]["prompt"]["seed"] == 7
    assert entry["overall"]["psnr"] is not None and "reported" in results


def test_real_dataset_copy_is_beside_the_paper_with_its_size(trained, sd15_diffusers_dir, tmp_path):
    from training.evaluate.report import build_report

    copy, sd = tmp_path / "HumanEdit", tmp_path / "sd15"
    shutil.copytree(_data_dir(trained), copy)
    shutil.copytree(sd15_diffusers_dir, sd)
    (copy / MARKER).unlink()  # unmarked copies stand for a real download
    (sd / MARKER).unlink()
    sources = {"prompt": None, "insight": None}  # (the tiny checkpoints were trained on the fixture)
    manifest = str(trained["root"] / "split.json")
    run = _scored_run(tmp_path / "run", copy, sd, sources, allow=False, manifest=manifest)
    report = build_report([run], tmp_path / "report").read_text()
    assert "MIND-Edit (reported, paper Table 1)" in report  # HumanEdit: the paper's rows beside ours
    assert "12 of HumanEdit's 5,751 rows" in report  # a partial copy says so
    assert "synthetic" not in report.lower()
    assert "`split.json` / test (" in report.split("## Provenance")[1]
