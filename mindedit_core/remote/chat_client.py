"""The one client for OpenAI-compatible ``/chat/completions`` endpoints (stdlib only).

Used by the remote VLM backend (`mindedit_core.remote.vlm`, the nodes) and by training data
construction (``training.refine_data``). Works with Ollama's and LM Studio's OpenAI APIs, vLLM,
SGLang, llama.cpp's server and hosted APIs: anything that takes ``{"model", "messages"}`` with
``image_url`` data URLs.

- Retries (bounded by ``max_retries``): 408/409/429/5xx, dropped connections and malformed or empty
  replies, with exponential backoff and jitter, honouring ``Retry-After``. Connection refused, other
  4xx, a missing model and a model that cannot read images fail at once (retrying cannot help);
  a timeout is retried only when ``retry_on_timeout``.
- ``timeout_s`` bounds each attempt as a whole (connect, send, wait, read).
- ``should_stop`` (e.g. ComfyUI's Cancel) is polled every 50 ms while a request is in flight or a
  retry waits: the connection is closed at once (the request is dropped) and `ChatCancelled` raised.
- Every error names the URL and what the server answered. Redirects are not followed (a server may
  not forward the image or the key elsewhere); the API key never appears in an error message or in
  ``repr``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
POLL_S = 0.05

# What servers say when a model is missing, or cannot take an image (Ollama, LM Studio, vLLM,
# llama.cpp's server word it differently; these cover the wordings seen in their sources and issues).
_MODEL_MISSING = (
    "not found",  # Ollama: model "x" not found, try pulling it first
    "does not exist",  # vLLM, OpenAI
    "no such model",
    "unknown model",
    "not loaded",
    "no models loaded",  # LM Studio
    "pull",
)
_NO_VISION = (
    "image input",
    "does not support image",
    "doesn't support image",
    "not support vision",
    "not a multimodal",
    "multimodal",
    "vision",
    "image_url",
    "images are not supported",
)


class ChatRequestError(RuntimeError):
    """The endpoint gave no usable answer; ``retryable`` says whether trying again may help, ``kind``
    what went wrong (``refused``, ``unreachable``, ``timeout``, ``http``, ``model_not_found``,
    ``no_vision``, ``malformed``, ``empty``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        kind: str = "http",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = kind


class ChatCancelled(RuntimeError):
    """``should_stop`` fired: the request in flight was dropped."""


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def openai_messages(messages: list[dict], image_png: bytes) -> list[dict]:
    """The pack's chat messages (`mindedit_core.prompting.build_messages`: content parts, an
    ``{"type": "image"}`` placeholder) in OpenAI's shape: system text as a plain string (older servers
    accept nothing else), the placeholder replaced by the image as a PNG data URL, order kept."""
    converted = []
    for message in messages:
        content = message["content"]
        if message["role"] == "system" and isinstance(content, list):
            content = "\n".join(part["text"] for part in content if part.get("type") == "text")
        elif isinstance(content, list):
            content = [
                {"type": "image_url", "image_url": {"url": png_data_url(image_png)}}
                if part.get("type") == "image"
                else part
                for part in content
            ]
        converted.append({"role": message["role"], "content": content})
    return converted


@dataclass
class ChatReply:
    """One answered request: the text, attempts made, the server's token usage (when it says) and
    the seconds the successful attempt took from sending to the last byte."""

    text: str
    attempts: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0
    finish_reason: str | None = None


@dataclass
class ChatClient:
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    max_retries: int = 6
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    temperature: float | None = 0.0
    max_tokens: int | None = 512
    seed: int | None = None
    retry_on_timeout: bool = True
    # What to say when the server refuses the key (401/403): where the key comes from.
    key_hint: str = "check the API key"
    sleep: Callable[[float], None] = time.sleep

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    def request_body(self, messages: list[dict]) -> bytes:
        body: dict = {"model": self.model, "messages": messages, "stream": False}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.seed is not None:
            body["seed"] = self.seed
        return json.dumps(body).encode("utf-8")

    def complete(self, messages: list[dict]) -> tuple[str, int]:
        """The answer text and the number of attempts it took. Raises `ChatRequestError`."""
        reply = self.reply(messages)
        return reply.text, reply.attempts

    def reply(self, messages: list[dict], should_stop: Callable[[], bool] | None = None) -> ChatReply:
        """The whole `ChatReply`. Raises `ChatRequestError`, or `ChatCancelled` when ``should_stop``
        fires (checked before each attempt, during it and while waiting to retry)."""
        return self.send(self.request_body(messages), should_stop)

    def send(self, data: bytes, should_stop: Callable[[], bool] | None = None) -> ChatReply:
        """`reply` for a request body already built (`request_body`)."""
        last: ChatRequestError | None = None
        for attempt in range(1, self.max_retries + 2):
            _check_stop(should_stop)
            try:
                reply = self._attempt(data, should_stop)
                reply.attempts = attempt
                return reply
            except ChatRequestError as exc:
                last = exc
                if not exc.retryable or attempt > self.max_retries:
                    break
                delay = exc.retry_after
                if delay is None:
                    delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                    delay *= 0.5 + random.random()  # jitter so concurrent workers do not sync up
                self._wait(delay, should_stop)
        assert last is not None
        if self.max_retries and last.retryable:
            raise ChatRequestError(
                f"{last} (gave up after {self.max_retries + 1} attempts)",
                status=last.status,
                retryable=True,
                kind=last.kind,
            ) from last
        raise last

    # -- one attempt -----------------------------------------------------------------------------
    def _attempt(self, data: bytes, should_stop: Callable[[], bool] | None) -> ChatReply:
        parts = urllib.parse.urlsplit(self.url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname, parts.port, timeout=self.timeout_s)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        outcome: dict = {}

        def send() -> None:
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=data, headers=headers)
                response = connection.getresponse()
                outcome["body"] = response.read()
                outcome["status"] = response.status
                outcome["headers"] = response.headers
            except BaseException as exc:  # reported to the caller's thread below
                outcome["error"] = exc
            outcome["seconds"] = time.perf_counter() - started

        worker = threading.Thread(target=send, name="mindedit-chat-request", daemon=True)
        deadline = time.monotonic() + self.timeout_s
        worker.start()
        try:
            while worker.is_alive():
                worker.join(POLL_S)
                if should_stop is not None and should_stop():
                    raise ChatCancelled(
                        f"The request to {self.url} was cancelled (the connection was closed)."
                    )
                if time.monotonic() > deadline and worker.is_alive():
                    raise self._timeout()
        finally:
            if worker.is_alive():
                _drop(connection)
            else:
                connection.close()
        if "error" in outcome:
            raise self._transport_error(outcome["error"])
        return self._read(outcome["status"], outcome["body"], outcome["headers"], outcome["seconds"])

    def _timeout(self) -> ChatRequestError:
        return ChatRequestError(
            f"{self.url} did not answer within {self.timeout_s:g} s (timeout). The server may still be "
            "loading the model or be busy: raise the timeout, or check the server's log.",
            retryable=self.retry_on_timeout,
            kind="timeout",
        )

    def _transport_error(self, exc: BaseException) -> ChatRequestError:
        if isinstance(exc, ConnectionRefusedError):
            return ChatRequestError(
                f"Could not connect to {self.url}: connection refused. Is the server running, and on this "
                "port? (Ollama: `ollama serve`, port 11434; LM Studio: start its local server, port 1234; "
                "vLLM: `vllm serve <model>`, port 8000.)",
                kind="refused",
            )
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return self._timeout()
        if isinstance(exc, (http.client.HTTPException, OSError)):
            return ChatRequestError(
                f"Could not reach {self.url}: {self._redact(str(exc) or type(exc).__name__)}",
                retryable=True,
                kind="unreachable",
            )
        return ChatRequestError(
            f"Request to {self.url} failed: {type(exc).__name__}: {exc}", kind="unreachable"
        )

    def _read(self, status: int, payload: bytes, headers, seconds: float) -> ChatReply:
        if status != 200:
            raise self._http_error(status, payload, headers)
        snippet = self._redact(payload[:200].decode("utf-8", "replace"))
        try:
            decoded = json.loads(payload)
            choice = decoded["choices"][0]
            answer = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChatRequestError(
                f"{self.url} answered with a body that is not a chat completion: {snippet!r}",
                retryable=True,
                kind="malformed",
            ) from exc
        if isinstance(answer, list):  # some servers return content parts
            answer = "".join(part.get("text", "") for part in answer if isinstance(part, dict))
        finish = choice.get("finish_reason") if isinstance(choice, dict) else None
        if not isinstance(answer, str) or not answer.strip():
            hint = (
                " It used up max_tokens before answering (a reasoning model may spend them thinking): raise "
                "max_new_tokens."
                if finish == "length"
                else ""
            )
            raise ChatRequestError(
                f"{self.url} returned an empty answer (finish_reason: {finish!r}) from model "
                f"{self.model!r}.{hint}",
                retryable=finish != "length",
                kind="empty",
            )
        usage = decoded.get("usage") if isinstance(decoded, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        return ChatReply(
            text=answer,
            attempts=1,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            seconds=seconds,
            finish_reason=finish,
        )

    def _http_error(self, status: int, payload: bytes, headers) -> ChatRequestError:
        said = self._redact(_server_message(payload))
        lowered = said.lower()
        retry_after = _retry_after_seconds(headers, self.max_backoff_s)
        if status in (400, 404) and "model" in lowered and any(w in lowered for w in _MODEL_MISSING):
            return ChatRequestError(
                f"{self.url}: the server has no model {self.model!r} (HTTP {status}: {said}). Ollama: run "
                f"`ollama pull {self.model}`; LM Studio / vLLM / llama.cpp: load or serve that model, or "
                "use the exact name the server lists at /v1/models.",
                status=status,
                kind="model_not_found",
            )
        if 400 <= status < 600 and any(w in lowered for w in _NO_VISION):
            return ChatRequestError(
                f"{self.url}: model {self.model!r} cannot read images (HTTP {status}: {said}). Use a vision "
                "model (Ollama: e.g. qwen2.5vl, llava, gemma3; LM Studio: a model marked as vision; vLLM: a "
                "VL model).",
                status=status,
                kind="no_vision",
            )
        hint = ""
        if status in (401, 403):
            hint = f" ({self.key_hint})"
        elif status == 404:
            hint = " (is the base URL right? It ends in /v1 for Ollama, LM Studio and vLLM)"
        return ChatRequestError(
            f"{self.url} answered HTTP {status}: {said}{hint}",
            status=status,
            retryable=status in RETRYABLE_STATUS,
            retry_after=retry_after,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self.api_key, "***") if self.api_key else text

    def _wait(self, seconds: float, should_stop: Callable[[], bool] | None) -> None:
        if should_stop is None:
            self.sleep(seconds)
            return
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            _check_stop(should_stop)
            self.sleep(min(POLL_S, left))
        _check_stop(should_stop)


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise ChatCancelled("The request was cancelled before it was sent.")


def _drop(connection: http.client.HTTPConnection) -> None:
    """Close a connection whose request is still in flight (its thread then ends on a socket error)."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    connection.close()


def _server_message(payload: bytes) -> str:
    """The error text of an error body: OpenAI's ``{"error": {"message"}}``, Ollama's
    ``{"error": "..."}``, vLLM's ``{"message"}``, or the body's start."""
    text = payload[:2000].decode("utf-8", "replace")
    try:
        decoded = json.loads(text)
    except ValueError:
        return text[:300].strip() or "(empty body)"
    if isinstance(decoded, dict):
        error = decoded.get("error", decoded.get("message", decoded.get("detail")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error:
            return str(error)[:300]
    return text[:300]


def _retry_after_seconds(headers, cap: float) -> float | None:
    """A numeric ``Retry-After`` header, capped; None when absent or not a number of seconds."""
    value = headers.get("Retry-After") if headers else None
    try:
        return min(cap, max(0.0, float(value))) if value else None
    except ValueError:
        return None
