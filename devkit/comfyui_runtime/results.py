"""What a queued prompt produced, read back from ComfyUI's /history: images, cached and executed
nodes, the failing node's exception."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import PromptFailed


@dataclass
class OutputImage:
    """One image an output node reported (`SaveImage`, `PreviewImage`, ...), downloaded via /view."""

    node_id: str
    filename: str
    subfolder: str
    type: str
    data: bytes

    def pil(self):
        from PIL import Image

        image = Image.open(io.BytesIO(self.data))
        image.load()
        return image


@dataclass
class NodeFailure:
    """What ComfyUI recorded about the node that raised during execution."""

    node_id: str
    node_type: str
    exception_type: str
    exception_message: str
    traceback: list[str]


@dataclass
class PromptResult:
    """The outcome of one queued prompt, read back from /history.

    `cached_nodes` are the node ids ComfyUI served from its cache (its `execution_cached` status
    message); `executed_nodes` the prompt's other nodes (on failure: exactly the ones that ran
    before the failing node, as ComfyUI reports them).
    """

    prompt_id: str
    status: str  # "success" | "error" | "interrupted"
    outputs: dict[str, Any]
    images: list[OutputImage]
    cached_nodes: list[str]
    executed_nodes: list[str]
    error: NodeFailure | None
    messages: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def images_of(self, node_id: str) -> list[OutputImage]:
        return [img for img in self.images if img.node_id == str(node_id)]

    def describe_error(self) -> str:
        if self.error is None:
            return f"prompt {self.prompt_id}: {self.status}"
        e = self.error
        tail = "".join(e.traceback[-3:]) if e.traceback else ""
        return (
            f"prompt {self.prompt_id} failed in node {e.node_id} ({e.node_type}): "
            f"{e.exception_type}: {e.exception_message}\n{tail}"
        )

    def raise_for_error(self) -> PromptResult:
        if not self.ok:
            raise PromptFailed(self)
        return self


def parse_history(
    prompt_id: str, entry: dict[str, Any], fetch: Callable[[str, str, str], bytes] | None = None
) -> PromptResult:
    """A `PromptResult` from one /history entry; `fetch(filename, subfolder, type)` downloads each
    reported image (None: images keep empty `data`)."""
    status = entry.get("status") or {}
    messages = status.get("messages") or []
    prompt_nodes = [str(k) for k in (entry.get("prompt") or [None, None, {}])[2]]
    cached: list[str] = []
    error: NodeFailure | None = None
    executed_on_failure: list[str] | None = None
    interrupted = False
    for event, data in messages:
        if event == "execution_cached":
            cached = [str(n) for n in data.get("nodes", [])]
        elif event == "execution_error":
            error = NodeFailure(
                node_id=str(data.get("node_id")),
                node_type=str(data.get("node_type")),
                exception_type=str(data.get("exception_type")),
                exception_message=str(data.get("exception_message")).strip(),
                traceback=list(data.get("traceback") or []),
            )
            executed_on_failure = [str(n) for n in data.get("executed", [])]
        elif event == "execution_interrupted":
            interrupted = True
            executed_on_failure = [str(n) for n in data.get("executed", [])]
    if executed_on_failure is not None:
        executed = [n for n in executed_on_failure if n not in cached]
    else:
        executed = [n for n in prompt_nodes if n not in cached]
    state = (
        "interrupted" if interrupted else ("success" if status.get("status_str") == "success" else "error")
    )
    outputs = entry.get("outputs") or {}
    images: list[OutputImage] = []
    for node_id, node_out in outputs.items():
        for info in node_out.get("images") or []:
            data = b""
            if fetch is not None:
                data = fetch(info["filename"], info.get("subfolder", ""), info.get("type", "output"))
            images.append(
                OutputImage(
                    node_id=str(node_id),
                    filename=info["filename"],
                    subfolder=info.get("subfolder", ""),
                    type=info.get("type", "output"),
                    data=data,
                )
            )
    return PromptResult(
        prompt_id=prompt_id,
        status=state,
        outputs=outputs,
        images=images,
        cached_nodes=cached,
        executed_nodes=executed,
        error=error,
        messages=messages,
    )
