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

from ..mindedit_core.node_specs import DEFAULT_REMOTE_MODEL as DEFAULT_MODEL  # noqa: F401 (re-exported)
from ..mindedit_core.node_specs import REMOTE_VLM
from ..mindedit_core.remote.policy import RemoteURLRefused, check_base_url
from ..mindedit_core.remote.vlm import RemoteVLM
from .node_spec import implements


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


SPEC = REMOTE_VLM


@implements(SPEC)
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
