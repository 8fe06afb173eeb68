"""Wrong paths in the training commands end in one line that says what to do (the same handler as
``training.evaluate``), not a traceback; ``-v`` keeps the traceback."""

from __future__ import annotations

import pytest

from training import build_targets, refine_data, train
from training.data import split


def _one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def _train_args(inputs, tmp_path, **paths):
    values = {
        "model": str(inputs["model"]),
        "data": str(inputs["data"]),
        "targets": str(inputs["targets"]),
        "out": str(tmp_path / "out"),
        **paths,
    }
    args = [f"--{k}={v}" for k, v in values.items()]
    return args + [
        "--variant",
        "head_only",
        "--max-steps",
        "1",
        "--set",
        "progress=false",
        "tensorboard=false",
    ]


@pytest.mark.parametrize(
    ("paths", "extra", "expected"),
    [
        ({"model": "/no/such/model"}, ["split=all"], "MLLM folder not found:"),
        ({"data": "/no/such/data"}, ["split=all"], "hf download BryanW/HumanEdit"),
        ({"targets": "/no/such/targets"}, ["split=all"], "python -m training.build_targets"),
        ({}, ["split=/no/such/split.json"], "python -m training.data.split"),
        ({"config": "no_such_preset"}, ["split=all"], "shipped presets"),
    ],
)
def test_train_wrong_paths_are_one_line_with_the_fix(
    training_inputs, tmp_path, capsys, paths, extra, expected
):
    missing = str(tmp_path / "missing")  # never created: a wrong path must not be written either
    paths = {k: v.replace("/no/such", missing) for k, v in paths.items()}
    extra = [e.replace("/no/such", missing) for e in extra]
    code = train.main(_train_args(training_inputs, tmp_path, **paths) + extra)
    line = _one_line_error(capsys, code)
    assert not (tmp_path / "missing").exists()
    assert expected in line


def test_train_missing_refined_file_is_named(training_inputs, tmp_path, capsys):
    args = _train_args(training_inputs, tmp_path, refined="/no/such/refined.jsonl")
    args[args.index("head_only")] = "text_only"
    line = _one_line_error(capsys, train.main(args + ["split=all"]))
    assert "refined=/no/such/refined.jsonl does not exist" in line and "training.refine_data" in line


def test_verbose_keeps_the_traceback(training_inputs, tmp_path):
    with pytest.raises(FileNotFoundError):
        train.main(["-v"] + _train_args(training_inputs, tmp_path, data="/no/such/data") + ["split=all"])


def test_data_commands_wrong_paths_are_one_line(tmp_path, capsys, tiny_clip_vision_dir, humanedit_dir):
    code = build_targets.main(
        ["--data", "/no/such/data", "--clip", str(tiny_clip_vision_dir), "--out", str(tmp_path)]
    )
    assert "hf download" in _one_line_error(capsys, code)
    code = build_targets.main(
        ["--data", str(humanedit_dir), "--clip", "/no/clip", "--out", str(tmp_path / "t")]
    )
    assert "not a CLIP vision model folder" in _one_line_error(capsys, code)
    code = refine_data.main(["--data", "/no/such/data", "--out", str(tmp_path / "r.jsonl"), "--quiet"])
    assert "hf download" in _one_line_error(capsys, code)
    code = split.main(["--data", "/no/such/data", "--out", str(tmp_path / "s.json")])
    assert "hf download" in _one_line_error(capsys, code)
