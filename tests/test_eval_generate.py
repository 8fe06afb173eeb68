"""Batch editing on the tiny fixtures: resumable (a killed run recomputes nothing already finished),
masked edits keep every pixel outside the mask, baselines run through the same harness, shards
partition the items, and a run folder refuses other settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures_eval import StubMLLM

from training.evaluate import (
    PRESETS,
    Conditioner,
    DatasetSelection,
    DiffusionSettings,
    EditPipelines,
    Shard,
    SourceClipEncoder,
    item_seed,
    load_selection,
    make_run_info,
    run_generate,
)
from training.evaluate.generate import RunMismatchError, prepare_run_folder
from training.evaluate.run_files import (
    append_jsonl,
    image_path,
    manifest_path,
    read_jsonl,
    read_manifest,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Killed(BaseException):
    """Stands for the process being killed (not an Exception: the harness must not swallow it)."""


@pytest.fixture(scope="module")
def editor(sd15_diffusers_dir, eval_ipadapter_file):
    return EditPipelines(
        DiffusionSettings(
            model=str(sd15_diffusers_dir), ipadapter=str(eval_ipadapter_file), steps=2, resolution=64
        )
    )


@pytest.fixture(scope="module")
def records(eval_humanedit_dir):
    return load_selection(DatasetSelection(format="humanedit", path=str(eval_humanedit_dir), limit=4))


def _info(method, editor, records_dir, seed=0):
    selection = DatasetSelection(format="humanedit", path=str(records_dir), limit=4)
    return make_run_info(method, editor.settings.to_json(), selection.to_json(), seed)


def test_killed_generate_resumes_without_recomputing(
    tmp_path, editor, records, stub_mllm, eval_humanedit_dir
):
    out = tmp_path / "run"
    method = PRESETS["mind_edit"]
    info = _info(method, editor, eval_humanedit_dir)
    finished: list[str] = []

    def kill_after_two(item_id: str, status: str) -> None:
        finished.append(item_id)
        if len(finished) == 2:
            raise Killed

    with pytest.raises(Killed):
        run_generate(
            records, editor, Conditioner(method, mllm=stub_mllm), out, run_info=info, on_item=kill_after_two
        )
    first_two = [r.id for r in records[:2]]
    assert finished == first_two
    assert sorted(read_manifest(out)) == sorted(first_two)
    mtimes = {i: image_path(out, i).stat().st_mtime_ns for i in first_two}
    assert len(stub_mllm.calls) == 2

    # Simulate a kill between the image write and the manifest append for the second item.
    manifest = manifest_path(out, 0)
    lines = manifest.read_text().splitlines()
    manifest.write_text(lines[0] + "\n")

    resumed = type(stub_mllm)()
    stats = run_generate(records, editor, Conditioner(method, mllm=resumed), out, run_info=info)
    assert stats.skipped == first_two
    assert stats.done == [r.id for r in records[2:]]
    assert resumed.calls == [r.instruction for r in records[2:]]  # nothing recomputed
    assert {i: image_path(out, i).stat().st_mtime_ns for i in first_two} == mtimes
    rows = read_manifest(out)
    assert sorted(rows) == sorted(r.id for r in records)
    assert rows[first_two[1]].get("recovered") is True
    assert rows[records[0].id]["positive"].startswith("a photo, ")
    assert rows[records[0].id]["image_embed"] == "insight"

    again = type(stub_mllm)()
    stats = run_generate(records, editor, Conditioner(method, mllm=again), out, run_info=info)
    assert stats.done == [] and len(stats.skipped) == len(records) and again.calls == []


def test_masked_edit_keeps_pixels_outside_the_mask(tmp_path, editor, records, stub_mllm):
    record = records[0]
    source = record.load_source()
    mask = record.load_mask()
    assert mask is not None and source.size == (64, 64)
    embeds = stub_mllm.embed(source, record.instruction)
    result = editor.edit(source, "a red square", "", mask=mask, image_embeds=embeds, seed=1)
    inside = np.asarray(mask) >= 128
    assert 0 < inside.sum() < inside.size
    result_px, source_px = np.asarray(result), np.asarray(source)
    assert np.array_equal(result_px[~inside], source_px[~inside])
    assert np.abs(result_px[inside].astype(int) - source_px[inside].astype(int)).mean() > 1


def test_same_seed_same_image_and_ablation_switch_changes_it(editor, records, stub_mllm):
    record = records[1]
    source = record.load_source()
    embeds = stub_mllm.embed(source, record.instruction)
    first = np.asarray(editor.edit(source, "a cat", "", image_embeds=embeds, seed=7))
    second = np.asarray(editor.edit(source, "a cat", "", image_embeds=embeds, seed=7))
    without = np.asarray(editor.edit(source, "a cat", "", image_embeds=None, seed=7))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, without)


def test_baselines_run_through_the_same_harness(
    tmp_path, editor, records, tiny_clip_vision_dir, eval_humanedit_dir
):
    subset = records[:2]
    plain = EditPipelines(DiffusionSettings(model=editor.settings.model, steps=2, resolution=64))
    out = tmp_path / "sd15"
    stats = run_generate(
        subset,
        plain,
        Conditioner(PRESETS["sd15"]),
        out,
        run_info=_info(PRESETS["sd15"], plain, eval_humanedit_dir),
    )
    assert stats.done == [r.id for r in subset]
    rows = read_manifest(out)
    assert rows[subset[0].id]["positive"] == subset[0].instruction
    assert rows[subset[0].id]["image_embed"] == "none"

    encoder = SourceClipEncoder(tiny_clip_vision_dir)
    out = tmp_path / "ipadapter"
    conditioner = Conditioner(PRESETS["ipadapter"], source_encoder=encoder)
    cond = conditioner(subset[0], subset[0].load_source(), None, 0)
    assert tuple(cond.image_embeds.shape) == (1, 1024)
    stats = run_generate(
        subset, editor, conditioner, out, run_info=_info(PRESETS["ipadapter"], editor, eval_humanedit_dir)
    )
    assert stats.failed == [] and read_manifest(out)[subset[1].id]["image_embed"] == "source_clip"


def test_refined_prompt_without_mllm_or_record_prompts_is_a_clear_error(records):
    conditioner = Conditioner(PRESETS["refined_only"])
    with pytest.raises(ValueError, match="--mllm"):
        conditioner(records[0], records[0].load_source(), None, 0)
    with pytest.raises(ValueError, match="--mllm"):
        Conditioner(PRESETS["mind_edit"])


class FlakyMLLM(StubMLLM):
    """The stub MLLM whose first pass fails (tests/test_mllm_protocol.py checks it too)."""

    def run(self, request):
        if not self.calls:
            self.calls.append(request.instruction)
            raise RuntimeError("MLLM exploded")
        return super().run(request)


def test_failing_item_is_logged_and_the_rest_continue(tmp_path, editor, records, eval_humanedit_dir):
    out = tmp_path / "flaky"
    stats = run_generate(
        records[:2],
        editor,
        Conditioner(PRESETS["refined_only"], mllm=FlakyMLLM()),
        out,
        run_info=_info(PRESETS["refined_only"], editor, eval_humanedit_dir),
    )
    assert stats.failed == [records[0].id] and stats.done == [records[1].id]
    failure = json.loads((out / "failures.rank0.jsonl").read_text().splitlines()[0])
    assert "MLLM exploded" in failure["error"]


def test_run_folder_refuses_other_settings(tmp_path, editor, eval_humanedit_dir):
    info = _info(PRESETS["sd15"], editor, eval_humanedit_dir, seed=0)
    prepare_run_folder(tmp_path, info)
    prepare_run_folder(tmp_path, dict(info, created="later"))  # provenance may differ
    with pytest.raises(RunMismatchError, match="seed"):
        prepare_run_folder(tmp_path, _info(PRESETS["sd15"], editor, eval_humanedit_dir, seed=1))
    with pytest.raises(RunMismatchError, match="diffusion"):
        other = dict(info, diffusion=dict(info["diffusion"], steps=3))
        prepare_run_folder(tmp_path, other)
    # A larger subset of the same data extends the run and is recorded for `score`.
    bigger = dict(info, dataset=dict(info["dataset"], limit=6))
    prepare_run_folder(tmp_path, bigger)
    assert json.loads((tmp_path / "run.json").read_text())["dataset"]["limit"] == 6


def test_shards_partition_items_and_seeds_do_not_depend_on_them() -> None:
    items = list(range(11))
    parts = [Shard(k, 3).take(items) for k in range(3)]
    assert sorted(sum(parts, [])) == items
    assert all(set(a).isdisjoint(b) for i, a in enumerate(parts) for b in parts[i + 1 :])
    assert item_seed(0, "123") == item_seed(0, "123")
    assert item_seed(0, "123") != item_seed(0, "124")
    assert item_seed(0, "123") != item_seed(1, "123")


@pytest.mark.parametrize(
    ("preset", "origin", "has_embeds"),
    [
        ("mind_edit", "mllm", True),
        ("refined_only", "mllm", False),
        ("insight_only", "instruction", True),
        ("sd15", "instruction", False),
    ],
)
def test_presets_switch_prompt_and_embedding(records, stub_mllm, preset, origin, has_embeds) -> None:
    record = records[2]
    source = record.load_source()
    mllm = (
        stub_mllm if PRESETS[preset].prompt == "refined" or PRESETS[preset].image_embed == "insight" else None
    )
    cond = Conditioner(PRESETS[preset], mllm=mllm)(record, source, record.load_mask(), 5)
    assert cond.prompt_origin == origin
    expected_positive = f"a photo, {record.instruction.lower()}" if origin == "mllm" else record.instruction
    assert cond.positive == expected_positive
    assert (cond.image_embeds is not None) == has_embeds
    if has_embeds:
        assert tuple(cond.image_embeds.shape) == (1, 1024)
        assert cond.image_embeds.equal(stub_mllm._embed(source, record.instruction))


def test_record_refined_prompts_are_used_without_mllm(records) -> None:
    record = records[0].with_refined("a crisp photo of a red square", "blur")
    cond = Conditioner(PRESETS["refined_only"])(record, record.load_source(), None, 0)
    assert (cond.positive, cond.negative, cond.prompt_origin) == (
        "a crisp photo of a red square",
        "blur",
        "record",
    )


def test_shard_comes_from_rank_and_world_size_without_accelerate(monkeypatch) -> None:
    import sys

    from training.evaluate.generate import shard_from_environment

    monkeypatch.setitem(sys.modules, "accelerate", None)  # not installed
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    shard, _ = shard_from_environment()
    assert (shard.index, shard.count) == (2, 3)
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ValueError, match="outside WORLD_SIZE"):
        shard_from_environment()


def test_append_after_a_line_cut_short_keeps_the_new_row(tmp_path):
    # A kill during an append leaves a partial last line; the next row must not be glued to it.
    path = tmp_path / "manifest.rank0.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "fi')
    append_jsonl(path, {"id": "c"})
    assert [row["id"] for row in read_jsonl(path)] == ["a", "c"]


def test_progress_shows_a_bar_per_method_and_one_line_per_item(
    tmp_path, editor, records, stub_mllm, eval_humanedit_dir, capsys
):
    info = _info(PRESETS["mind_edit"], editor, eval_humanedit_dir)
    out = tmp_path / "run"
    run_generate(records[:2], editor, Conditioner(PRESETS["mind_edit"], mllm=stub_mllm), out, run_info=info,
                 progress=True)  # fmt: skip
    err = capsys.readouterr().err
    for position, record in enumerate(records[:2], start=1):
        assert f"[mind_edit {position}/2] {record.id}: done in" in err
    assert "mind_edit: 100%" in err and "2/2 [" in err and ("item/s" in err or "s/item" in err)  # count, rate


def test_prompts_and_v_insight_from_two_mllms_record_both_sources(
    tmp_path, editor, records, eval_humanedit_dir
):
    """Table 2 #3-#5: one MLLM writes the prompts, another's head gives v_insight (no one-pass call)."""
    from fixtures_eval import StubMLLM

    prompts, insight = StubMLLM(), StubMLLM()
    sources = {"prompt": {"mllm": "/m", "checkpoint": "/t", "variant": "text_only"},
               "insight": {"mllm": "/m", "checkpoint": "/h", "variant": "head_only"}}  # fmt: skip
    info = make_run_info(
        PRESETS["mind_edit"], editor.settings.to_json(), {"format": "humanedit"}, 0, sources=sources
    )
    conditioner = Conditioner(PRESETS["mind_edit"], mllm=prompts, insight_mllm=insight)
    run_generate(records[:2], editor, conditioner, tmp_path / "run", run_info=info)
    assert len(prompts.calls) == 2 and len(insight.calls) == 2  # refine on one, embed on the other
    for item in read_manifest(tmp_path / "run").values():
        assert (
            item["prompt_source"]["variant"] == "text_only"
            and item["insight_source"]["variant"] == "head_only"
        )
    other = make_run_info(PRESETS["mind_edit"], editor.settings.to_json(), {"format": "humanedit"}, 0,
                          sources={**sources, "insight": {**sources["insight"], "checkpoint": "/j"}})  # fmt: skip
    with pytest.raises(RunMismatchError, match="sources"):  # another checkpoint never joins this folder
        prepare_run_folder(tmp_path / "run", other)
