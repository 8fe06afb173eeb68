"""A minimal client for OpenAI-compatible ``/chat/completions`` endpoints (stdlib only).

Works with OpenAI, Azure-style proxies, vLLM, SGLang, llama.cpp server, Ollama's OpenAI API, ...:
anything that takes ``{"model", "messages"}`` with ``image_url`` data URLs. No dependency on the
``openai`` package (its retry policy is then ours: 429 and 5xx and network errors are retried with
exponential backoff, honouring ``Retry-After``; other 4xx fail at once because retrying cannot help).
"""

from __future__ import annotations

import base64
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class ChatRequestError(RuntimeError):
    """The endpoint gave no usable answer; ``retryable`` says whether trying later may help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def refinement_messages(system_prompt: str, user_text: str, image_png: bytes) -> list[dict]:
    """OpenAI-style messages: system text, then the user turn with the image first (as in training)."""
    return [
        {"role": "system", "content": system_prompt},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": png_data_url(image_png)}},
                {"type": "text", "text": user_text},
            ],
        },
    ]


@dataclass
class ChatClient:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 6
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    temperature: float | None = 0.0
    max_tokens: int | None = 512
    sleep: Callable[[float], None] = time.sleep

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    def complete(self, messages: list[dict]) -> tuple[str, int]:
        """The answer text and the number of attempts it took. Raises `ChatRequestError`."""
        body: dict = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        data = json.dumps(body).encode("utf-8")
        last: ChatRequestError | None = None
        for attempt in range(1, self.max_retries + 2):
            try:
                return self._post(data), attempt
            except ChatRequestError as exc:
                last = exc
                if not exc.retryable or attempt > self.max_retries:
                    break
                delay = exc.retry_after
                if delay is None:
                    delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                    delay *= 0.5 + random.random()  # jitter so concurrent workers do not sync up
                self.sleep(delay)
        assert last is not None
        raise last

    def _post(self, data: bytes) -> str:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            error = ChatRequestError(
                f"{self.url} answered HTTP {exc.code}: {detail}"
                + (" (check the API key)" if exc.code in (401, 403) else ""),
                status=exc.code,
                retryable=exc.code in RETRYABLE_STATUS,
            )
            error.retry_after = _retry_after_seconds(exc.headers, self.max_backoff_s)
            raise error from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise ChatRequestError(f"Could not reach {self.url}: {exc}", retryable=True) from exc
        try:
            answer = json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChatRequestError(
                f"{self.url} returned a body that is not a chat completion: {payload[:200]!r}", retryable=True
            ) from exc
        if isinstance(answer, list):  # some servers return content parts
            answer = "".join(part.get("text", "") for part in answer if isinstance(part, dict))
        if not isinstance(answer, str) or not answer.strip():
            raise ChatRequestError(f"{self.url} returned an empty answer.", retryable=True)
        return answer


def _retry_after_seconds(headers, cap: float) -> float | None:
    """A numeric ``Retry-After`` header, capped; None when absent or not a number of seconds."""
    value = headers.get("Retry-After") if headers else None
    try:
        return min(cap, max(0.0, float(value))) if value else None
    except ValueError:
        return None
