"""refine_data against a stdlib OpenAI-compatible server on 127.0.0.1: retries, malformed answers,
and a killed run that resumes without losing or repeating an answered request."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mindedit_core.prompting import PROMPT_VERSION, format_refinement
from mindedit_core.remote.chat_client import ChatClient, ChatRequestError
from training.refine_cache import RefineCache, attach_refined, load_refined
from training.refine_data import http_answer_fn, main, run_refinement


def good_answer(text: str) -> str:
    spot = text.split("near spot ")[1].split(".")[0]
    return format_refinement(f"square {spot}, flat colour, same light", "blurry, extra squares")


def test_refine_retries_429_records_malformed_and_never_repeats(
    fake_chat_server, humanedit_records, tmp_path
):
    records = list(humanedit_records[:5])
    malformed_for = records[2].instruction

    def script(text: str, n: int):
        if n == 0 and records[0].instruction in text:
            return 429, "slow down"
        if malformed_for in text:
            return 200, "Sure! I would love to help with that."
        return 200, good_answer(text)

    server = fake_chat_server(script)
    client = ChatClient(server.base_url, "gpt-test", api_key="sk-test", sleep=lambda s: None)
    cache = RefineCache(tmp_path / "refined.jsonl")
    counts = run_refinement(
        records, cache, http_answer_fn(client), model="gpt-test", concurrency=3, progress=False
    )
    assert counts == {"cached": 0, "resent": 0, "ok": 4, "unparsed": 1, "error": 0}
    assert len(server.requests) == 6  # 5 records + one retry after the 429
    first = server.requests[0]
    assert first["auth"] == "Bearer sk-test" and first["body"]["model"] == "gpt-test"
    image_part = first["body"]["messages"][1]["content"][0]["image_url"]["url"]
    assert image_part.startswith("data:image/png;base64,")
    assert base64.b64decode(image_part.split(",", 1)[1])[:4] == b"\x89PNG"
    # HumanEdit rows have masks: the prompt says the edit region is outlined.
    assert "outlined" in first["body"]["messages"][1]["content"][1]["text"]

    all_lines = [json.loads(line) for line in (tmp_path / "refined.jsonl").read_text().splitlines()]
    lines = [line for line in all_lines if line["status"] != "sent"]  # each request is marked sent first
    assert [line["status"] for line in all_lines].count("sent") == 5  # one mark per request, not per retry
    by_id = {line["id"]: line for line in lines}
    assert len(lines) == 5 and set(by_id) == {r.id for r in records}
    assert by_id[records[2].id]["status"] == "unparsed" and "Sure!" in by_id[records[2].id]["raw"]
    assert by_id[records[0].id]["attempts"] == 2
    assert by_id[records[1].id]["prompt_version"] == PROMPT_VERSION

    refined = load_refined(tmp_path / "refined.jsonl", prompt_version=PROMPT_VERSION)
    assert set(refined) == {r.id for r in records} - {records[2].id}
    assert refined[records[1].id][0].startswith("square 1")
    filled, missing = attach_refined(records, refined)
    assert missing == [records[2].id] and filled[0].has_refined

    # A second run sends nothing: every answer (even the unparseable one) is cached.
    again = run_refinement(
        records,
        RefineCache(tmp_path / "refined.jsonl"),
        http_answer_fn(client),
        model="gpt-test",
        progress=False,
    )
    assert again["cached"] == 5 and len(server.requests) == 6
    # Another model is another key.
    other = run_refinement(
        records[:1],
        RefineCache(tmp_path / "refined.jsonl"),
        http_answer_fn(client),
        model="other-model",
        progress=False,
    )
    assert other["ok"] == 1 and len(server.requests) == 7


def test_client_fails_fast_on_auth_error_and_gives_up_after_retries(fake_chat_server):
    server = fake_chat_server(lambda text, n: (401, "bad key") if "auth" in text else (503, "down"))
    client = ChatClient(server.base_url, "m", max_retries=2, sleep=lambda s: None)
    msg = [{"role": "user", "content": [{"type": "text", "text": "auth"}]}]
    with pytest.raises(ChatRequestError, match="HTTP 401.*API key") as info:
        client.complete(msg)
    assert not info.value.retryable and len(server.requests) == 1
    msg = [{"role": "user", "content": [{"type": "text", "text": "other"}]}]
    with pytest.raises(ChatRequestError, match="HTTP 503"):
        client.complete(msg)
    assert len(server.requests) == 1 + 3  # first try + 2 retries


def test_failed_requests_are_recorded_and_retried_next_run(fake_chat_server, humanedit_records, tmp_path):
    records = list(humanedit_records[:2])
    state = {"down": True}
    server = fake_chat_server(lambda text, n: (500, "boom") if state["down"] else (200, good_answer(text)))
    client = ChatClient(server.base_url, "m", max_retries=1, sleep=lambda s: None)
    cache_path = tmp_path / "c.jsonl"
    counts = run_refinement(
        records, RefineCache(cache_path), http_answer_fn(client), model="m", progress=False
    )
    assert counts["error"] == 2
    statuses = [json.loads(line)["status"] for line in cache_path.read_text().splitlines()]
    assert statuses.count("error") == 2 and set(statuses) == {"sent", "error"}
    state["down"] = False
    counts = run_refinement(
        records, RefineCache(cache_path), http_answer_fn(client), model="m", progress=False
    )
    assert counts["ok"] == 2 and set(load_refined(cache_path)) == {r.id for r in records}
    assert counts["resent"] == 0  # failed requests are retries, not requests lost in flight


def test_refine_data_targets_the_edit_instruction_style(fake_chat_server, humanedit_records, tmp_path):
    """--style edit_instruction: the instruction style's prompt is sent, answers parse in that style,
    and the cache records its version, so the two styles' targets never mix."""
    from mindedit_core.prompt_styles import EDIT_INSTRUCTION

    def answer(text, n):
        spot = text.split("near spot ")[1].split(".")[0]
        return 200, format_refinement(
            f"Paint square {spot} red; keep the rest unchanged", "blue square", style=EDIT_INSTRUCTION
        )

    server = fake_chat_server(answer)
    client = ChatClient(server.base_url, "m", sleep=lambda s: None)
    path = tmp_path / "instructions.jsonl"
    records = list(humanedit_records[:2])
    counts = run_refinement(
        records,
        RefineCache(path),
        http_answer_fn(client, "edit_instruction"),
        model="m",
        progress=False,
        style="edit_instruction",
    )
    assert counts["ok"] == 2
    assert server.requests[0]["body"]["messages"][0]["content"] == EDIT_INSTRUCTION.system_prompt
    assert "edit_instruction and negative_prompt" in server.requests[0]["text"]
    refined = load_refined(path, prompt_version=EDIT_INSTRUCTION.version)
    assert len(refined) == 2
    assert all(p.startswith("Paint square") and n == "blue square" for p, n in refined.values())
    assert load_refined(path, prompt_version=PROMPT_VERSION) == {}, "SD-style training never reads them"
    # The same records in the SD style are other requests (another prompt version in the key).
    again = run_refinement(records, RefineCache(path), http_answer_fn(client), model="m", progress=False)
    assert again["cached"] == 0


def test_truncated_last_line_is_skipped_and_repaired(tmp_path, humanedit_records, fake_chat_server):
    server = fake_chat_server(lambda text, n: (200, good_answer(text)))
    client = ChatClient(server.base_url, "m", sleep=lambda s: None)
    path = tmp_path / "c.jsonl"
    run_refinement(
        humanedit_records[:1], RefineCache(path), http_answer_fn(client), model="m", progress=False
    )
    with path.open("a") as fh:
        fh.write('{"key": "abc", "id": "9')  # a write cut by a kill
    cache = RefineCache(path)
    assert cache.bad_lines == 1 and len(cache.entries) == 1
    run_refinement(humanedit_records[:2], cache, http_answer_fn(client), model="m", progress=False)
    assert len(RefineCache(path).entries) == 2 and RefineCache(path).bad_lines == 1


@pytest.mark.slow
def test_killed_run_resumes_without_lost_or_repeated_requests(
    fake_chat_server, humanedit_dir, tmp_path, repo_root, capsys
):
    def script(text: str, n: int):
        time.sleep(0.15)
        return 200, good_answer(text)

    server = fake_chat_server(script)
    out = tmp_path / "refined.jsonl"
    argv = [
        "--format",
        "humanedit",
        "--data",
        str(humanedit_dir),
        "--out",
        str(out),
        "--base-url",
        server.base_url,
        "--model",
        "m",
        "--concurrency",
        "2",
        "--quiet",
    ]
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hf"), "PYTHONPATH": str(repo_root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.refine_data", *argv],
        env=env,
        cwd=repo_root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def answered(path):
        rows = (
            [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if path.exists()
            else []
        )
        return [r for r in rows if r["status"] != "sent"], [r for r in rows if r["status"] == "sent"]

    def in_flight_now(path) -> set:
        done, marked = answered(path)
        return {row["key"] for row in marked} - {row["key"] for row in done}

    # Kill mid-flight: at least 4 answered and a request sent but not yet answered (on a loaded
    # machine the moment between one answer and the next request's mark can otherwise be hit).
    deadline = time.time() + 60
    while time.time() < deadline and (len(answered(out)[0]) < 4 or not in_flight_now(out)):
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done, marked = answered(out)
    answered_before = {row["instruction"] for row in done}
    in_flight = {row["key"] for row in marked} - {row["key"] for row in done}
    assert 4 <= len(answered_before) < 12
    assert 1 <= len(in_flight) <= 2  # at most --concurrency requests were in flight at the kill
    sent_before = len(server.requests)
    assert sent_before - len(answered_before) <= len(in_flight)  # the server saw no others unanswered

    capsys.readouterr()
    assert main(argv) == 0
    # The resumed run says how many requests it sends again, and sends exactly the unanswered ones.
    assert f"{len(in_flight)} sent again" in capsys.readouterr().out
    resumed = [r["text"] for r in server.requests[sent_before:]]
    assert len(resumed) == 12 - len(answered_before)
    # Nothing answered before the kill was asked again, and every record is now answered exactly once.
    assert not any(instr in text for text in resumed for instr in answered_before)
    lines = answered(out)[0]
    assert len(lines) == len({line["key"] for line in lines}) == 12
    assert {line["status"] for line in lines} == {"ok"}


@pytest.mark.slow
def test_local_mllm_mode_records_answers_through_the_core_loader(tiny_llava_dir, humanedit_records, tmp_path):
    from training.refine_data import local_answer_fn

    answer_fn = local_answer_fn(str(tiny_llava_dir), max_new_tokens=6)
    cache = RefineCache(tmp_path / "local.jsonl")
    counts = run_refinement(humanedit_records[:1], cache, answer_fn, model="local:tiny", progress=False)
    # The random tiny model writes gibberish: the answer is kept (unparsed), not dropped or retried.
    assert counts["ok"] + counts["unparsed"] == 1 and counts["error"] == 0
    (entry,) = cache.entries.values()
    assert entry.model == "local:tiny" and entry.raw
    again = run_refinement(
        humanedit_records[:1],
        RefineCache(tmp_path / "local.jsonl"),
        answer_fn,
        model="local:tiny",
        progress=False,
    )
    assert again["cached"] == 1


def test_local_mllm_reads_images_at_the_max_side_the_cache_key_records(humanedit_dir, monkeypatch, tmp_path):
    """The cache key holds --max-side, so the local model must read images at that size too."""
    import mindedit_core.mllm as mllm_pkg
    from training import refine_data

    loads = []
    monkeypatch.setattr(mllm_pkg, "load_mllm", lambda *a, **kw: loads.append(kw) or object())
    refine_data.local_answer_fn("model-dir", max_side=123)
    assert loads[-1]["max_side"] == 123

    class Stop(Exception):
        pass

    def fake_local_answer_fn(model_dir, **kw):
        loads.append(kw)
        raise Stop

    monkeypatch.setattr(refine_data, "local_answer_fn", fake_local_answer_fn)
    argv = [
        "--data",
        str(humanedit_dir),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--local-mllm",
        "m",
        "--max-side",
        "321",
    ]
    with pytest.raises(Stop):
        refine_data.main(argv)
    assert loads[-1]["max_side"] == 321


def test_cli_refines_only_the_split_subset(fake_chat_server, humanedit_dir, humanedit_records, tmp_path):
    from training.data import make_split

    manifest = make_split([r.id for r in humanedit_records], seed=5, test_size=3, train_size=None)
    manifest.save(tmp_path / "split.json")
    server = fake_chat_server(lambda text, n: (200, good_answer(text)))
    out = tmp_path / "refined.jsonl"
    argv = [
        "--data",
        str(humanedit_dir),
        "--out",
        str(out),
        "--base-url",
        server.base_url,
        "--model",
        "m",
        "--split",
        str(tmp_path / "split.json"),
        "--subset",
        "test",
        "--quiet",
        "--no-mask",
    ]
    assert main(argv) == 0
    assert set(load_refined(out)) == set(manifest.test)
    assert len(server.requests) == 3
    assert all("outlined" not in r["text"] for r in server.requests)  # --no-mask
