"""The remote VLM backend in a real headless ComfyUI, against the stdlib stand-in OpenAI-compatible
server on 127.0.0.1 (devkit/openai_standin.py): the refine-only workflow with the remote loader in
place of the local one; Cancel while the server stalls; each failure's message; the API key absent
from the saved workflow, the prompt JSON, the history and the log; other hosts refused unless the
server's environment allows them; no workflow value choosing the key's variable; the image budget.

A private server: its environment carries the pack's key, an allow-list and a decoy secret.
"""

from __future__ import annotations

import io
import json
import socket
import time

import numpy as np
import pytest
from PIL import Image

from devkit import build_workflows as wf
from devkit.demo import (
    load_workflow,
    painted_source,
    preview_texts,
    sample_inputs,
)
from devkit.openai_standin import StandInServer
from mindedit_core.remote import ALLOWED_HOSTS_ENV, API_KEY_ENV

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]

SECRET = "sk-mindedit-test-0123456789"
DECOY = "sk-decoy-never-sent-9876543210"
ALLOWED_HOST = "allowed-host.invalid"  # allowed by the environment; never resolves
SIZE = (128, 96)  # larger than the image budget set below, so the budget shows in what is sent
BUDGET = 64  # max_image_side (the widget's minimum; the default, 384, works the same way)


@pytest.fixture(scope="module")
def remote(tiny_sd15_sites16, tmp_path_factory):
    from devkit.comfyui_runtime import ComfyUIServer

    standin = StandInServer()
    base = tmp_path_factory.mktemp("remote_base")
    server = ComfyUIServer(
        base,
        models={"checkpoints": [tiny_sd15_sites16]},
        threads=1,
        env={API_KEY_ENV: SECRET, ALLOWED_HOSTS_ENV: ALLOWED_HOST, "OPENAI_API_KEY": DECOY},
    )
    server.start()
    try:
        work = tmp_path_factory.mktemp("remote_images")
        painted = painted_source(work, *sample_inputs(work, SIZE))
        client = server.client
        yield {
            "server": server,
            "client": client,
            "standin": standin,
            "info": client.object_info(),
            "checkpoint": tiny_sd15_sites16.name,
            "painted": client.upload_image(painted),
        }
    finally:
        server.stop()
        standin.close()


def _prompt(env, *, model="qwen2.5vl:7b", base_url=None, timeout_s=30, max_retries=0, style="sd_tags"):
    """The shipped refine-only workflow with the remote loader in place of the local one."""
    from devkit.workflow_api import find_node_ids, set_widget, ui_to_api

    prompt = ui_to_api(load_workflow(wf.REFINE_ONLY_WORKFLOW), env["info"])
    set_widget(prompt, "CheckpointLoaderSimple", "ckpt_name", env["checkpoint"])
    set_widget(prompt, wf.SOURCE_TITLE, "image", env["painted"])
    set_widget(prompt, "KSampler", "steps", 2)
    set_widget(prompt, wf.REFINE_TITLE, "style", style)
    set_widget(prompt, wf.REFINE_TITLE, "max_image_side", BUDGET)
    (loader,) = find_node_ids(prompt, wf.MLLM_LOADER)
    prompt[loader] = {
        "class_type": "MindEditRemoteVLM",
        "inputs": {
            "base_url": base_url or env["standin"].base_url,
            "model": model,
            "timeout_s": timeout_s,
            "max_retries": max_retries,
        },
        "_meta": {"title": "MIND-Edit Remote VLM"},
    }
    return prompt


def _failure(env, **kwargs) -> str:
    result = env["client"].run(_prompt(env, **kwargs), timeout=120)
    assert result.status == "error" and result.error is not None, result.status
    assert result.error.node_type == "MindEditRefineInstruction"
    return result.error.exception_message


def test_the_refine_only_workflow_runs_with_the_remote_vlm(remote):
    standin, before = remote["standin"], len(remote["standin"].requests)
    prompt = _prompt(remote, style="edit_instruction")
    result = remote["client"].run(prompt, timeout=300).raise_for_error()
    texts = preview_texts(result, prompt)
    assert texts[wf.POSITIVE_PREVIEW_TITLE].startswith("Turn the sky into a warm orange sunset")
    status = texts[wf.STATUS_PREVIEW_TITLE]
    assert "style: edit instruction (mindedit-instruct-v1)" in status and "(remote)" in status, status
    assert "painted on the source" in status
    (request,) = standin.requests[before:]
    assert request.headers["Authorization"] == f"Bearer {SECRET}", "the pack's own variable is sent"
    sent = Image.open(io.BytesIO(request.images[0]))
    assert sent.size == (64, 48), "the image sent respects max_image_side"
    assert np.asarray(sent.convert("RGB")).reshape(-1, 3).tolist().count([255, 0, 255]) > 10, (
        "the painted mask is outlined in the image sent"
    )
    assert "outlined in magenta" in request.body["messages"][1]["content"][1]["text"]
    (saved,) = [img for img in result.images if img.type == "output"]
    assert Image.open(io.BytesIO(saved.data)).size == SIZE


def test_the_key_never_reaches_the_workflow_the_prompt_the_history_nor_the_log(remote):
    client, server = remote["client"], remote["server"]
    prompt = _prompt(remote)
    assert SECRET not in json.dumps(prompt) and SECRET not in json.dumps(
        load_workflow(wf.REFINE_ONLY_WORKFLOW)
    )
    result = client.run(prompt, timeout=300).raise_for_error()
    (saved,) = [img for img in result.images if img.type == "output"]
    png_metadata = json.dumps({k: str(v) for k, v in Image.open(io.BytesIO(saved.data)).info.items()})
    assert SECRET not in png_metadata  # (the test server runs with --disable-metadata: nothing there)
    history = client.history(result.prompt_id)
    stored_prompt = json.dumps(history["prompt"])  # the prompt JSON as ComfyUI keeps it
    assert "MindEditRemoteVLM" in stored_prompt and SECRET not in stored_prompt
    assert SECRET not in json.dumps(history) and "Bearer" not in json.dumps(history)
    # A server that echoes the Authorization header: the error shown is redacted.
    message = _failure(remote, model="echo-auth")
    assert SECRET not in message and "***" in message and API_KEY_ENV in message
    log = server.log_text()
    assert SECRET not in log and DECOY not in log


def test_no_workflow_value_chooses_the_variable_that_is_sent(remote):
    info = remote["info"]["MindEditRemoteVLM"]["input"]
    assert sorted(info["required"]) == ["base_url", "max_retries", "model", "timeout_s"]
    assert "optional" not in info
    standin, before = remote["standin"], len(remote["standin"].requests)
    prompt = _prompt(remote)
    loader = next(n for n in prompt.values() if n["class_type"] == "MindEditRemoteVLM")
    loader["inputs"]["api_key_env"] = "OPENAI_API_KEY"  # an extra input a crafted workflow might add
    loader["inputs"]["api_key"] = DECOY
    set_instruction = next(n for n in prompt.values() if n["class_type"] == "MindEditRefineInstruction")
    set_instruction["inputs"]["instruction"] = "make the sky a sunset, please"  # not served from cache
    remote["client"].run(prompt, timeout=300).raise_for_error()
    headers = [r.headers.get("Authorization") for r in standin.requests[before:]]
    assert headers == [f"Bearer {SECRET}"]


def test_a_non_loopback_host_is_refused_at_queue_time_unless_the_environment_allows_it(remote):
    from devkit.comfyui_runtime.errors import PromptRejected

    with pytest.raises(PromptRejected) as info:
        remote["client"].queue_prompt(_prompt(remote, base_url="http://203.0.113.9:11434/v1"))
    assert ALLOWED_HOSTS_ENV in json.dumps(info.value.response)
    # The allow-listed host passes the check; it does not resolve, and the error names the URL.
    message = _failure(remote, base_url=f"http://{ALLOWED_HOST}:11434/v1")
    assert f"Could not reach http://{ALLOWED_HOST}:11434/v1/chat/completions" in message


FAILURES = [
    ("missing", ["has no model 'missing'", "ollama pull missing"]),
    ("text-only", ["cannot read images", "does not support image input"]),
    ("error-500", ["HTTP 500", "llama runner process has terminated"]),
    ("malformed", ["not a chat completion", "upstream proxy error"]),
    ("empty", ["empty answer"]),
    ("blind", ["answered as if it got no image"]),
]


@pytest.mark.parametrize(("model", "needles"), FAILURES, ids=[m for m, _ in FAILURES])
def test_each_failure_gives_its_message(remote, model, needles):
    message = _failure(remote, model=model)
    assert f"{remote['standin'].base_url}/chat/completions" in message
    for needle in needles:
        assert needle in message, message


def test_connection_refused_and_timeout_give_their_messages(remote):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message = _failure(remote, base_url=f"http://127.0.0.1:{port}/v1")
    assert f"127.0.0.1:{port}/v1/chat/completions: connection refused" in message
    assert "Is the server running" in message
    message = _failure(remote, model="stall", timeout_s=1)
    assert "did not answer within 1 s (timeout)" in message


def test_the_embeds_nodes_refuse_the_remote_vlm_and_say_why(remote):
    before = len(remote["standin"].requests)
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": remote["painted"]}},
        "2": {
            "class_type": "MindEditRemoteVLM",
            "inputs": {
                "base_url": remote["standin"].base_url,
                "model": "m",
                "timeout_s": 30,
                "max_retries": 0,
            },
        },
        "3": {
            "class_type": "MindEditInsightEmbeds",
            "inputs": {
                "mllm": ["2", 0],
                "image": ["1", 0],
                "instruction": "make it autumn",
                "seed": 0,
                "max_new_tokens": 64,
                "max_image_side": 384,
            },
        },
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
    }
    result = remote["client"].run(prompt, timeout=120)
    assert result.status == "error" and result.error.node_type == "MindEditInsightEmbeds"
    assert "hidden states the MIND-Edit vision head reads" in result.error.exception_message
    assert len(remote["standin"].requests) == before, "refused before anything was sent"


def test_cancel_returns_within_a_second_while_the_server_stalls(remote):
    client, standin = remote["client"], remote["standin"]
    before = len(standin.requests)
    prompt_id = client.queue_prompt(_prompt(remote, model="stall", timeout_s=120))
    deadline = time.monotonic() + 60
    while len(standin.requests) == before:  # the request is in flight, the server says nothing
        assert time.monotonic() < deadline, "the request never reached the stand-in"
        time.sleep(0.05)
    time.sleep(0.3)
    started = time.monotonic()
    client.interrupt()
    while client.history(prompt_id) is None:
        assert time.monotonic() - started < 5, "the prompt did not end after Cancel"
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    result = client.wait(prompt_id, timeout=5)
    assert result.status == "interrupted", result.status
    assert elapsed < 1.0, f"Cancel took {elapsed:.2f} s"
