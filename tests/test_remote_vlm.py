"""The remote VLM backend and the one chat client against the stdlib stand-in server (127.0.0.1):
same messages and image budget as a local VLM, every failure's message, Cancel, the URL/key policy."""

from __future__ import annotations

import io
import threading
import time

import pytest
import torch
from PIL import Image

from mindedit_core.images import prepare_mllm_image
from mindedit_core.mllm import GenerationInterrupted, MissingVisionHeadError, PassOptions, require_vision_head
from mindedit_core.prompting import build_messages
from mindedit_core.remote import ALLOWED_HOSTS_ENV, API_KEY_ENV, RemoteURLRefused, check_base_url
from mindedit_core.remote.chat_client import ChatClient, ChatRequestError, openai_messages
from mindedit_core.remote.vlm import RemoteVLM, RemoteVLMError

INSTRUCTION = "make the sky a sunset"


# Every test runs without the shell's remote settings (API key, allowed hosts).
pytestmark = pytest.mark.usefixtures("no_remote_env")


def _image(height=600, width=900):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, height, width, 3, generator=generator)


def _mask(height=600, width=900):
    mask = torch.zeros(1, height, width)
    mask[:, 100:300, 200:500] = 1.0
    return mask


@pytest.mark.parametrize("style", ["sd_tags", "edit_instruction"])
def test_sends_the_local_messages_at_the_same_image_budget(standin, style):
    vlm = RemoteVLM(standin.base_url, "qwen2.5vl:7b")
    options = PassOptions(max_image_side=384, style=style, seed=7, max_new_tokens=77)
    result = vlm.refine_full(_image(), INSTRUCTION, mask=_mask(), options=options)
    assert result.refined.parsed and result.refined.warning is None and result.v_insight is None
    assert result.refined.positive.startswith("Turn the sky" if style == "edit_instruction" else "red brick")
    (request,) = standin.requests
    assert request.path == "/v1/chat/completions" and "Authorization" not in request.headers
    body = request.body
    assert (body["model"], body["seed"], body["max_tokens"], body["temperature"]) == (
        "qwen2.5vl:7b",
        7,
        77,
        0.0,
    )
    expected_png = prepare_mllm_image(_image(), mask=_mask(), max_side=384)
    sent = Image.open(io.BytesIO(request.images[0]))
    assert sent.size == expected_png.size == (384, 256)
    assert list(sent.convert("RGB").getdata()) == list(expected_png.getdata())  # outline included, lossless
    local = build_messages(INSTRUCTION, with_mask=True, style=style)
    assert body["messages"] == openai_messages(local, request.images[0])
    assert body["messages"][0]["content"] == local[0]["content"][0]["text"]
    assert result.request_bytes == request.body_bytes and result.image_bytes == len(request.images[0])


def test_image_budget_bounds_what_is_sent(standin):
    vlm = RemoteVLM(standin.base_url, "m")
    sizes = {}
    for side in (384, 768, 1024):
        vlm.refine_full(_image(1200, 1600), INSTRUCTION, options=PassOptions(max_image_side=side))
        sent = Image.open(io.BytesIO(standin.requests[-1].images[0]))
        assert max(sent.size) == side
        sizes[side] = standin.requests[-1].body_bytes
    assert sizes[384] < sizes[768] < sizes[1024]


def test_the_key_comes_only_from_the_packs_variable_and_is_never_repeated(standin, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-secret")
    RemoteVLM(standin.base_url, "m").refine_full(_image(64, 64), INSTRUCTION)
    assert "Authorization" not in standin.requests[-1].headers  # no other variable is ever read
    monkeypatch.setenv(API_KEY_ENV, "sk-pack-secret")
    vlm = RemoteVLM(standin.base_url, "m")
    vlm.refine_full(_image(64, 64), INSTRUCTION)
    assert standin.requests[-1].headers["Authorization"] == "Bearer sk-pack-secret"
    assert "sk-pack-secret" not in repr(vlm) + vlm.description
    echo = RemoteVLM(standin.base_url, "echo-auth")
    with pytest.raises(RemoteVLMError) as info:
        echo.refine_full(_image(64, 64), INSTRUCTION)
    assert "sk-pack-secret" not in str(info.value) and "***" in str(info.value)
    assert API_KEY_ENV in str(info.value) and "HTTP 401" in str(info.value)
    assert "sk-pack-secret" not in repr(echo.client(PassOptions()))


FAILURES = [
    ("missing", ["has no model 'missing'", "HTTP 404", "ollama pull missing", "not found"]),
    ("text-only", ["cannot read images", "HTTP 400", "does not support image input"]),
    ("error-500", ["HTTP 500", "llama runner process has terminated"]),
    ("error-503", ["HTTP 503", "server busy", "gave up after 2 attempts"]),
    ("malformed", ["not a chat completion", "upstream proxy error", "gave up after 2 attempts"]),
    ("empty", ["empty answer", "finish_reason: 'stop'"]),
    ("blind", ["answered as if it got no image", "not a vision model", "can't see any image"]),
]


@pytest.mark.parametrize(("model", "needles"), FAILURES, ids=[m for m, _ in FAILURES])
def test_every_failure_names_the_url_and_the_servers_answer(standin, model, needles):
    vlm = RemoteVLM(standin.base_url, model, max_retries=1)
    with pytest.raises(RemoteVLMError) as info:
        vlm.refine_full(_image(64, 64), INSTRUCTION)
    message = str(info.value)
    assert f"{standin.base_url}/chat/completions" in message
    for needle in needles:
        assert needle in message, message


def test_an_empty_answer_cut_by_max_tokens_says_so_and_is_not_retried():
    import json

    client = ChatClient("http://127.0.0.1:1/v1", "m")
    body = {"choices": [{"message": {"content": ""}, "finish_reason": "length"}]}
    with pytest.raises(ChatRequestError, match="raise max_new_tokens") as info:
        client._read(200, json.dumps(body).encode(), {}, 0.1)
    assert not info.value.retryable and info.value.kind == "empty"


def test_connection_refused_says_is_the_server_running():
    import socket

    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    vlm = RemoteVLM(f"http://127.0.0.1:{port}/v1", "m", max_retries=2)
    started = time.perf_counter()
    with pytest.raises(RemoteVLMError, match=rf"127.0.0.1:{port}/v1/chat/completions: connection refused"):
        vlm.refine_full(_image(64, 64), INSTRUCTION)
    assert time.perf_counter() - started < 2, "a refused connection is not retried"


def test_timeout_names_the_url_and_the_limit(standin):
    vlm = RemoteVLM(standin.base_url, "stall", timeout_s=1, max_retries=3)
    started = time.perf_counter()
    with pytest.raises(RemoteVLMError, match=r"did not answer within 1 s \(timeout\)"):
        vlm.refine_full(_image(64, 64), INSTRUCTION)
    assert time.perf_counter() - started < 2.5, "a timeout is not retried"


def test_cancel_drops_the_request_within_a_second(standin):
    vlm = RemoteVLM(standin.base_url, "stall", timeout_s=60)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.perf_counter()
    with pytest.raises(GenerationInterrupted, match="cancelled"):
        vlm.refine_full(_image(64, 64), INSTRUCTION, should_stop=stop.is_set)
    assert time.perf_counter() - started < 0.3 + 1.0


def test_cancel_during_a_retry_wait(standin):
    client = ChatClient(standin.base_url, "error-503", max_retries=5, backoff_s=30)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.perf_counter()
    from mindedit_core.remote.chat_client import ChatCancelled

    with pytest.raises(ChatCancelled):
        client.reply([{"role": "user", "content": "x"}], should_stop=stop.is_set)
    assert time.perf_counter() - started < 1.3


def test_no_vision_head_and_says_why():
    vlm = RemoteVLM("http://localhost:1234/v1", "m")
    with pytest.raises(MissingVisionHeadError, match="hidden states"):
        require_vision_head(vlm)
    with pytest.raises(MissingVisionHeadError, match="remote VLM"):
        vlm.refine_and_embed(_image(8, 8), INSTRUCTION)
    assert vlm.torch_modules() == {}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:11434/v1",
        "http://localhost:1234/v1/",
        "http://[::1]:8000/v1",
        "https://127.0.0.5/v1",
    ],
)
def test_loopback_works_out_of_the_box(url):
    assert check_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://203.0.113.7:11434/v1", ALLOWED_HOSTS_ENV),
        ("https://api.example.com/v1", "is not on this computer"),
        ("http://user:pw@127.0.0.1:11434/v1", API_KEY_ENV),
        ("ftp://127.0.0.1/v1", "not an http"),
        ("127.0.0.1:11434", "not an http"),
        ("http://127.0.0.1@evil.example/v1", API_KEY_ENV),  # userinfo: the host is evil.example
        ("http://evil.example#@127.0.0.1/v1", "query or fragment"),
        ("http://127.0.0.1:11434/v1?next=http://evil.example", "query or fragment"),
        ("http://127.0.0.1.nip.io/v1", "is not on this computer"),  # a name, not a loopback address
        ("http://0.0.0.0:11434/v1", "is not on this computer"),
    ],
)
def test_other_hosts_and_odd_urls_are_refused(url, message):
    with pytest.raises(RemoteURLRefused, match=message):
        check_base_url(url)
    with pytest.raises(RemoteURLRefused):
        RemoteVLM(url, "m")


def test_the_environment_allows_other_hosts(monkeypatch):
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "gpu-box.lan, api.example.com:443")
    assert check_base_url("http://GPU-BOX.lan:11434/v1") == "http://GPU-BOX.lan:11434/v1"
    assert check_base_url("https://api.example.com:443/v1")
    with pytest.raises(RemoteURLRefused):
        check_base_url("https://api.example.com:8443/v1")  # the entry names a port
    with pytest.raises(RemoteURLRefused):
        check_base_url("http://other.lan/v1")
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "*")
    assert check_base_url("http://other.lan/v1")


def test_the_policy_is_checked_again_when_the_request_is_made(standin, monkeypatch):
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "gpu-box.lan")
    vlm = RemoteVLM("http://gpu-box.lan:11434/v1", "m")
    monkeypatch.delenv(ALLOWED_HOSTS_ENV)
    with pytest.raises(RemoteURLRefused):
        vlm.refine_full(_image(8, 8), INSTRUCTION)


def test_redirects_are_not_followed(monkeypatch):
    """A server must not be able to forward the image (or the key) to another host."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits = []

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            hits.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(307)
            self.send_header("Location", "http://203.0.113.7/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        vlm = RemoteVLM(f"http://127.0.0.1:{httpd.server_address[1]}/v1", "m", max_retries=0)
        with pytest.raises(RemoteVLMError, match="HTTP 307"):
            vlm.refine_full(_image(8, 8), INSTRUCTION)
        assert hits == ["/v1/chat/completions"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_one_chat_client_in_the_codebase():
    """training.refine_data uses core's client; no other module opens chat completions itself."""
    from pathlib import Path

    import training.refine_data as refine_data
    from mindedit_core.remote import chat_client

    assert refine_data.ChatClient is chat_client.ChatClient
    root = Path(__file__).resolve().parents[1]
    senders = [
        str(path.relative_to(root))
        for folder in ("mindedit_core", "nodes", "training", "devkit", "bench")
        for path in (root / folder).rglob("*.py")
        if "chat/completions" in path.read_text() and "openai_standin" not in path.name
    ]
    assert senders == ["mindedit_core/remote/chat_client.py"], senders
