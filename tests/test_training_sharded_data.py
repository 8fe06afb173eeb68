"""`refine_data` and `build_targets` shard by RANK/WORLD_SIZE: two real processes, then the merge
step, give exactly what one process gives (same answers, same targets, each request sent once); the
merge is resumable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from mindedit_core.prompting import format_refinement
from training.refine_cache import load_refined, merge_rank_files, rank_file, unmerged_rank_files
from training.shards import Shard, shard_from_env
from training.target_store import TargetStore


def _answer(text: str) -> str:
    spot = text.split("near spot ")[1].split(".")[0]
    return format_refinement(f"square {spot}, flat colour", "blurry")


def _run_processes(module: str, argv: list[str], tmp_path, repo_root, world: int) -> None:
    """``world`` processes of ``python -m module argv`` at once, RANK 0..world-1."""
    procs = []
    for rank in range(world):
        env = {
            **os.environ,
            "PYTHONPATH": str(repo_root),
            "HF_DATASETS_CACHE": str(tmp_path / f"hf{rank}"),
            "OMP_NUM_THREADS": "1",
        }
        if world > 1:
            env.update(RANK=str(rank), WORLD_SIZE=str(world))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", module, *argv],
                env=env,
                cwd=repo_root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out + err[-4000:]


def test_shard_from_env_and_views():
    assert shard_from_env({}) == Shard(0, 1)
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "3"}) == Shard(1, 3)
    with pytest.raises(ValueError, match="outside WORLD_SIZE"):
        shard_from_env({"RANK": "3", "WORLD_SIZE": "3"})
    items = list(range(10))
    views = [Shard(k, 3).view(items) for k in range(3)]
    assert [list(v) for v in views] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(x for v in views for x in v) == items


def test_two_process_refine_data_equals_one_process(fake_chat_server, humanedit_dir, tmp_path, repo_root):
    server = fake_chat_server(lambda text, n: (200, _answer(text)))

    def argv(out):
        return ["--data", str(humanedit_dir), "--out", str(out), "--base-url", server.base_url]

    one = tmp_path / "one" / "refined.jsonl"
    _run_processes("training.refine_data", argv(one) + ["--model", "m", "--quiet"], tmp_path, repo_root, 1)
    asked_once = sorted(r["text"] for r in server.requests)
    server.requests.clear()

    two = tmp_path / "two" / "refined.jsonl"
    _run_processes("training.refine_data", argv(two) + ["--model", "m", "--quiet"], tmp_path, repo_root, 2)
    assert sorted(r["text"] for r in server.requests) == asked_once  # each record asked once, by one process
    assert [p.name for p in unmerged_rank_files(two)] == [
        "refined.rank0-of-2.jsonl",
        "refined.rank1-of-2.jsonl",
    ]
    assert load_refined(two) == {}  # not merged yet: nothing is used (with a warning)
    _run_processes("training.refine_data", ["--merge", "--out", str(two)], tmp_path, repo_root, 1)
    assert unmerged_rank_files(two) == []
    assert load_refined(two) == load_refined(one) and len(load_refined(one)) == 12

    def answered(path):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return sorted(
            (r["key"], r["status"], r["positive"], r["negative"]) for r in rows if r["status"] != "sent"
        )

    assert answered(two) == answered(one)

    # A rerun of the sharded command after the merge sends nothing again.
    server.requests.clear()
    _run_processes("training.refine_data", argv(two) + ["--model", "m", "--quiet"], tmp_path, repo_root, 2)
    assert server.requests == []


def test_refine_merge_resumes_after_a_kill(tmp_path):
    out = tmp_path / "refined.jsonl"
    lines = [
        json.dumps({"key": f"k{i}", "id": f"r{i}", "status": "ok", "model": "m", "prompt_version": "v",
                    "instruction": "i", "positive": f"p{i}", "negative": "n"})
        for i in range(4)
    ]  # fmt: skip
    rank_file(out, 0, 2).write_text("\n".join(lines[:2]) + "\n")
    rank_file(out, 1, 2).write_text("\n".join(lines[2:]) + "\n")
    # A merge killed after rank 0's file and half of a line of rank 1's file:
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])
    rank_file(out, 0, 2).unlink()
    assert merge_rank_files(out) == {"files": 1, "lines": 2}
    kept = [line for line in out.read_text().splitlines() if line.startswith('{"key"') and line.endswith("}")]
    assert kept == lines


def test_sharded_build_targets_in_process_equals_one_process(
    tiny_clip_vision_dir, humanedit_records, tmp_path
):
    from training.build_targets import build_targets, merge_rank_shards

    kw = dict(batch_size=2, shard_size=4, store_dtype=torch.float32, progress=False)
    one = build_targets(humanedit_records, tiny_clip_vision_dir, tmp_path / "one", **kw)
    for k in range(2):
        build_targets(humanedit_records, tiny_clip_vision_dir, tmp_path / "two", shard=Shard(k, 2), **kw)
    assert merge_rank_shards(tmp_path / "two") == {"files": 4, "targets": 24}
    two = TargetStore(tmp_path / "two")
    for kind in ("plain", "plus"):
        assert one.ids(kind) == two.ids(kind)
        for record_id in one.ids(kind):
            torch.testing.assert_close(one.get(record_id, kind), two.get(record_id, kind), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_two_process_build_targets_equals_one_process(
    tiny_clip_vision_dir, humanedit_dir, tmp_path, repo_root
):
    def argv(out):
        return [
            "--data", str(humanedit_dir), "--clip", str(tiny_clip_vision_dir), "--out", str(out),
            "--batch-size", "2", "--shard-size", "4", "--store-dtype", "float32", "--device", "cpu", "--quiet",
        ]  # fmt: skip

    one, two = tmp_path / "one", tmp_path / "two"
    _run_processes("training.build_targets", argv(one), tmp_path, repo_root, 1)
    _run_processes("training.build_targets", argv(two), tmp_path, repo_root, 2)
    rank_shards = sorted(p.name for p in two.glob("shard-rank*"))
    assert rank_shards == [f"shard-rank{k}of2-0000{i}.safetensors" for k in range(2) for i in range(2)]
    _run_processes("training.build_targets", ["--merge", "--out", str(two)], tmp_path, repo_root, 1)
    assert sorted(p.name for p in two.glob("shard-*")) == [f"shard-{i:05d}.safetensors" for i in range(4)]
    a, b = TargetStore(one), TargetStore(two)
    assert a.manifest["shapes"] == b.manifest["shapes"]
    for kind in ("plain", "plus"):
        assert a.ids(kind) == b.ids(kind) and len(a.ids(kind)) == 12
        for record_id in a.ids(kind):
            torch.testing.assert_close(a.get(record_id, kind), b.get(record_id, kind), rtol=0, atol=1e-5)
    torch.testing.assert_close(a.unconditional("plus"), b.unconditional("plus"), rtol=0, atol=0)
    # The merge is resumable: run again, nothing to do, nothing lost.
    _run_processes("training.build_targets", ["--merge", "--out", str(two)], tmp_path, repo_root, 1)
    assert len(TargetStore(two).ids("plain")) == 12
