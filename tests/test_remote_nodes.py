"""The remote VLM loader node and the refine node with it, in-process (ComfyUI's real modules, no
server): the shared pass cache, the style on the status line, Cancel, the embeds nodes' refusal,
queue-time URL checks and a declaration with no key widget."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from helpers_nodes import import_pack, pack_module

from mindedit_core.remote import ALLOWED_HOSTS_ENV


@pytest.fixture(scope="module")
def pack():
    return import_pack()


# Every test runs without the shell's remote settings (API key, allowed hosts).
pytestmark = pytest.mark.usefixtures("no_remote_env")


def _image(seed=0):
    return torch.rand((1, 48, 64, 3), generator=torch.Generator().manual_seed(seed))


def _load(base_url, model="qwen2.5vl:7b", timeout_s=30, max_retries=0):
    remote = pack_module("nodes.remote_vlm")
    return remote.MindEditRemoteVLM().load(base_url, model, timeout_s, max_retries)[0]


def test_declared_after_the_packs_style_with_no_key_widget(pack):
    remote = pack_module("nodes.remote_vlm")
    cls = pack_module("nodes").NODE_CLASS_MAPPINGS["MindEditRemoteVLM"]
    assert cls is remote.MindEditRemoteVLM
    spec = cls.INPUT_TYPES()
    assert list(spec["required"]) == ["base_url", "model", "timeout_s", "max_retries"]
    assert "optional" not in spec
    assert spec["required"]["base_url"][1]["default"] == "http://127.0.0.1:11434/v1"
    names = " ".join(spec["required"]).lower()
    assert "key" not in names and "env" not in names, "no workflow value may choose a key or its variable"
    assert cls.RETURN_TYPES == ("MINDEDIT_MLLM",)


def test_refine_node_runs_with_the_remote_vlm_and_shares_the_pass_cache(pack, standin):
    refine = pack_module("nodes.refine")
    handle = _load(standin.base_url)
    node = refine.MindEditRefineInstruction()
    pos, neg, raw, status = node.refine(
        handle, _image(), "make the sky a sunset", 0, 64, 384, None, "edit_instruction"
    )
    assert pos.startswith("Turn the sky into a warm orange sunset") and neg.startswith("grey overcast sky")
    assert raw.startswith("edit_instruction:")
    assert status.startswith("ok") and "style: edit instruction (mindedit-instruct-v1)" in status
    assert f"qwen2.5vl:7b at {standin.base_url} (remote)" in status
    again = node.refine(
        _load(standin.base_url), _image(), "make the sky a sunset", 0, 64, 384, None, "edit_instruction"
    )
    assert again[0] == pos and len(standin.requests) == 1, (
        "the same URL, model and inputs reuse the cached pass"
    )
    sd = node.refine(handle, _image(), "make the sky a sunset", 0, 64, 384)  # an older workflow: no style
    assert sd[0].startswith("red brick wall") and "style: SD tag prompts" in sd[3]
    assert len(standin.requests) == 2


def test_embeds_nodes_refuse_a_remote_vlm_and_say_why(pack, standin):
    refine = pack_module("nodes.refine")
    handle = _load(standin.base_url)
    for run in (refine.MindEditInsightEmbeds().embed, refine.MindEditRefineAndEmbed().run):
        with pytest.raises(ValueError, match="hidden states the MIND-Edit vision head reads"):
            run(handle, _image(), "x", 0, 64, 384)
    assert standin.requests == [], "refused before anything is sent"


def test_cancel_drops_the_request_and_raises_comfys_interrupt(pack, standin):
    import comfy.model_management as mm

    refine = pack_module("nodes.refine")
    handle = _load(standin.base_url, model="stall", timeout_s=60)
    timer = threading.Timer(0.3, mm.interrupt_current_processing, args=(True,))
    timer.start()
    started = time.perf_counter()
    try:
        with pytest.raises(mm.InterruptProcessingException):
            refine.MindEditRefineInstruction().refine(handle, _image(), "x", 0, 64, 384)
        assert time.perf_counter() - started < 1.3
        assert not mm.processing_interrupted(), "the interrupt flag must be consumed"
    finally:
        timer.cancel()
        mm.interrupt_current_processing(False)


def test_queue_time_checks_refuse_other_hosts_unless_allowed(pack, monkeypatch):
    remote = pack_module("nodes.remote_vlm")
    check = remote.MindEditRemoteVLM.VALIDATE_INPUTS
    assert check(base_url="http://127.0.0.1:11434/v1", model="m", timeout_s=10, max_retries=1) is True
    refused = check(base_url="http://198.51.100.4:11434/v1", model="m", timeout_s=10, max_retries=1)
    assert isinstance(refused, str) and ALLOWED_HOSTS_ENV in refused
    assert "model name is empty" in check(base_url="http://127.0.0.1:1/v1", model="  ")
    assert "timeout_s = 0 is below its minimum 1" in check(timeout_s=0)
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "198.51.100.4")
    assert check(base_url="http://198.51.100.4:11434/v1", model="m") is True
