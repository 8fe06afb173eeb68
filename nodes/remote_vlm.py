"""Node: a VLM served over an OpenAI-compatible chat-completions API (Ollama, LM Studio, vLLM,
llama.cpp's server, hosted APIs), for the refine node in place of a local VLM.

Nothing is contacted when this node runs: it checks the URL against the policy
(`mindedit_core.remote.policy`: loopback works, other hosts only when the artist's environment
allows them) and outputs a handle; the refine node sends the request. There is deliberately no
API-key widget: the key comes from the environment variable ``MINDEDIT_VLM_API_KEY`` only, so it is
never saved in a workflow nor sent in ``/prompt``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..mindedit_core.remote.policy import (
    ALLOWED_HOSTS_ENV,
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    RemoteURLRefused,
    check_base_url,
)
from ..mindedit_core.remote.vlm import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S, RemoteVLM
from .mllm_loader import CATEGORY, MLLM_TYPE
from .node_spec import Input, NodeSpec, Output, declare

DEFAULT_MODEL = "qwen2.5vl:7b"


@dataclass
class RemoteHandle:
    """What the remote loader outputs (ComfyUI type ``MINDEDIT_MLLM``, like a local MLLM's handle):
    no weights, so nothing for ComfyUI's memory manager. ``uid`` keys the pass cache: the same server
    URL and model share cached answers."""

    mllm: RemoteVLM
    description: str
    uid: str = field(default="")

    def __post_init__(self) -> None:
        if not self.uid:
            digest = hashlib.sha256(f"{self.mllm.base_url}|{self.mllm.model}".encode()).hexdigest()
            self.uid = f"remote:{digest[:16]}"


SPEC = NodeSpec(
    node_id="MindEditRemoteVLM",
    display_name="MIND-Edit Remote VLM (OpenAI-compatible)",
    category=CATEGORY,
    description=(
        "A vision-language model your own server already serves (Ollama, LM Studio, vLLM, llama.cpp's "
        "server) over its OpenAI-compatible chat API, for 'MIND-Edit Refine Instruction' in place of the "
        "MLLM Loader: no second copy of the model in ComfyUI's memory. Servers on this computer work as "
        f"they are; another host only if {ALLOWED_HOSTS_ENV} lists it. An API key, if the server needs "
        f"one, is read from {API_KEY_ENV} (never stored in the workflow). Prompts only: the MIND-Edit "
        "embeds need the local loader with a checkpoint."
    ),
    function="load",
    inputs=(
        Input(
            "base_url",
            "STRING",
            f"The server's OpenAI-compatible base URL (ending in /v1). Ollama: {DEFAULT_BASE_URL}; LM "
            "Studio: http://127.0.0.1:1234/v1; vLLM: http://127.0.0.1:8000/v1; llama.cpp server: "
            "http://127.0.0.1:8080/v1. A host other than this computer is refused unless the environment "
            f"variable {ALLOWED_HOSTS_ENV} allows it.",
            options={"default": DEFAULT_BASE_URL, "multiline": False},
        ),
        Input(
            "model",
            "STRING",
            "The model's name as the server lists it; it must be a vision model. Ollama: `ollama list` "
            "(e.g. qwen2.5vl:7b, gemma3:12b, llava:7b); LM Studio / vLLM: the id in GET /v1/models.",
            options={"default": DEFAULT_MODEL, "multiline": False},
        ),
        Input(
            "timeout_s",
            "INT",
            "Seconds to wait for one answer (the first request may load the model on the server).",
            options={"default": DEFAULT_TIMEOUT_S, "min": 1, "max": 3600, "step": 1},
        ),
        Input(
            "max_retries",
            "INT",
            "Retries after a busy server (429/5xx), a dropped connection or an empty or malformed reply; "
            "connection refused, a missing model and a timeout fail at once.",
            options={"default": DEFAULT_MAX_RETRIES, "min": 0, "max": 10, "step": 1},
        ),
    ),
    outputs=(
        Output(
            "mllm",
            MLLM_TYPE,
            "The remote VLM; connect it to 'MIND-Edit Refine Instruction' (the embeds nodes need a local "
            "MLLM with a MIND-Edit checkpoint).",
        ),
    ),
)


@declare(SPEC)
class MindEditRemoteVLM:
    """An OpenAI-compatible VLM endpoint for the refine node."""

    @classmethod
    def VALIDATE_INPUTS(cls, base_url=None, model=None, timeout_s=None, max_retries=None):
        if base_url is not None:
            try:
                check_base_url(base_url)
            except RemoteURLRefused as exc:
                return str(exc)
        if model is not None and not str(model).strip():
            return "MIND-Edit remote VLM: the model name is empty; give the name the server lists."
        for name, value in (("timeout_s", timeout_s), ("max_retries", max_retries)):
            problem = SPEC.range_problem(name, value)
            if problem:
                return f"MIND-Edit remote VLM: {problem}."
        return True

    def load(self, base_url: str, model: str, timeout_s: int, max_retries: int) -> tuple[RemoteHandle]:
        vlm = RemoteVLM(base_url, model, timeout_s=int(timeout_s), max_retries=int(max_retries))
        return (RemoteHandle(vlm, vlm.description),)


NODE_CLASSES = [MindEditRemoteVLM]
