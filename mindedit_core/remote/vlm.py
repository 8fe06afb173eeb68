"""`RemoteVLM`: the refinement pass answered by a VLM that an OpenAI-compatible server serves.

It satisfies the one pass contract (`mindedit_core.mllm.protocol`: ``run(PassRequest) -> PassResult``)
for prompts only: the refine node, the pass cache and its status line use it exactly like a local VLM. It sends the
same chat messages a local model reads (`mindedit_core.prompting.build_messages`, the chosen
style) with the same image prepared at the same budget (`mindedit_core.images.prepare_mllm_image`:
``max_image_side``, the mask outlined), through the pack's one chat client. Answers go through the
same parser and its visible fallback.

It has no hidden states, so no vision head can read them: a request for embeddings is refused with
the reason (``no_head_reason``, which `require_vision_head` also reports before anything runs).

Every request re-checks the URL policy and reads the API key from the environment
(`mindedit_core.remote.policy`); nothing secret is stored on the object or in its description.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..images import mask_is_empty, prepare_mllm_image
from ..mllm.options import PassOptions
from ..mllm.protocol import (
    GenerationInterrupted,
    MissingVisionHeadError,
    PassCalls,
    PassRequest,
    PassResult,
)
from ..prompting import build_messages, parse_refinement
from .chat_client import ChatCancelled, ChatClient, ChatRequestError, openai_messages
from .policy import API_KEY_ENV, api_key, check_base_url

DEFAULT_TIMEOUT_S = 120
DEFAULT_MAX_RETRIES = 2


class RemoteVLMError(RuntimeError):
    """The server gave no usable answer; the message names the URL and what the server said."""


# A text-only model behind a server that drops the image (instead of refusing it) answers as if
# none was sent: such an answer is an error, not a prompt to fall back from.
_BLIND_ANSWER = re.compile(
    r"\b(?:can(?:no|')t|do(?:n't| not)|unable to|not able to)\s+(?:see|view|access|read|open)\s+"
    r"(?:the|an?|any|your)\s+(?:attached\s+)?(?:image|picture|photo)"
    r"|\bno\s+(?:image|picture|photo)\s+(?:was|is|has been)\s+(?:attached|provided|included|shared)",
    re.IGNORECASE,
)


@dataclass
class RemoteResult(PassResult):
    """A `PassResult` (``v_insight`` always None; token counts as the server reports them, 0 when it
    does not) with the bytes sent."""

    request_bytes: int = 0
    image_bytes: int = 0


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class RemoteVLM(PassCalls):
    """A chat-completions endpoint and model; ``timeout_s`` per attempt, ``max_retries`` after it."""

    base_url: str
    model: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    default_options: PassOptions = field(default_factory=PassOptions)

    has_head = False
    negative_embeds = None
    no_head_reason = (
        "MIND-Edit: a remote VLM (served over an OpenAI-compatible API) returns text only, never the "
        "hidden states the MIND-Edit vision head reads, so it cannot predict v_insight (the IP-Adapter "
        "embeds). Use 'MIND-Edit MLLM Loader' with a MIND-Edit checkpoint for the embeds; the remote VLM "
        "works with 'MIND-Edit Refine Instruction' (prompts or an edit instruction)."
    )

    def __post_init__(self) -> None:
        self.base_url = check_base_url(self.base_url)
        if not str(self.model).strip():
            raise ValueError(
                "MIND-Edit remote VLM: the model name is empty. Give the name the server lists "
                "(Ollama: `ollama list`, e.g. qwen2.5vl:7b; LM Studio / vLLM: GET /v1/models)."
            )
        self.model = str(self.model).strip()

    @property
    def description(self) -> str:
        return f"{self.model} at {self.base_url} (remote)"

    def torch_modules(self) -> dict:
        return {}

    def client(self, options: PassOptions) -> ChatClient:
        """The chat client of one call: the URL re-checked, the key read now from the environment."""
        return ChatClient(
            check_base_url(self.base_url),
            self.model,
            api_key=api_key(),
            timeout_s=float(self.timeout_s),
            max_retries=int(self.max_retries),
            temperature=options.temperature if options.do_sample else 0.0,
            max_tokens=options.max_new_tokens,
            seed=options.seed,
            retry_on_timeout=False,  # a timed-out request would take as long again
            key_hint=f"set the key in the environment variable {API_KEY_ENV} before starting ComfyUI",
        )

    def request(self, image: Any, instruction: str, *, mask: Any = None, options: PassOptions | None = None):
        """(client, OpenAI messages, PNG bytes of the image as sent) for one pass."""
        opts = options or self.default_options
        with_mask = not mask_is_empty(mask)
        pil = prepare_mllm_image(image, mask=mask if with_mask else None, max_side=opts.max_image_side)
        png = png_bytes(pil)
        messages = openai_messages(build_messages(instruction, with_mask=with_mask, style=opts.style), png)
        return self.client(opts), messages, png

    def run(self, request: PassRequest) -> RemoteResult:
        """The refined prompts from the server (raises `RemoteVLMError`; `GenerationInterrupted` on
        Cancel, with the request dropped; `MissingVisionHeadError` for embeddings)."""
        if request.wants_embeds:
            raise MissingVisionHeadError(self.no_head_reason)
        image, instruction, mask = request.image, request.instruction, request.mask
        should_stop, on_token = request.should_stop, request.on_token
        opts = request.options or self.default_options
        if should_stop is not None and should_stop():
            raise GenerationInterrupted("The remote VLM request was cancelled before it was sent.")
        started = time.perf_counter()
        client, messages, png = self.request(image, instruction, mask=mask, options=opts)
        body = client.request_body(messages)
        prepared = time.perf_counter()
        try:
            reply = client.send(body, should_stop=should_stop)
        except ChatCancelled as exc:
            raise GenerationInterrupted(f"Cancelled: {exc}") from exc
        except ChatRequestError as exc:
            raise RemoteVLMError(f"MIND-Edit remote VLM: {exc}") from exc
        answered = time.perf_counter()
        if on_token is not None:
            on_token(opts.max_new_tokens, opts.max_new_tokens)
        refined = parse_refinement(reply.text, instruction, style=opts.style)
        if not refined.parsed and _BLIND_ANSWER.search(reply.text):
            raise RemoteVLMError(
                f"MIND-Edit remote VLM: model {self.model!r} at {client.url} answered as if it got no image "
                f"(answer starts: {reply.text[:120]!r}). It is probably not a vision model, or the server "
                "drops images for it: use a vision model (Ollama: e.g. qwen2.5vl, llava, gemma3)."
            )
        return RemoteResult(
            refined=refined,
            v_insight=None,
            text=reply.text,
            prompt_tokens=int(reply.prompt_tokens or 0),
            new_tokens=int(reply.completion_tokens or 0),
            timings={
                "prepare": prepared - started,
                "request": answered - prepared,
                "server": reply.seconds,
                "attempts": reply.attempts,
                "parse": time.perf_counter() - answered,
            },
            request_bytes=len(body),
            image_bytes=len(png),
        )
