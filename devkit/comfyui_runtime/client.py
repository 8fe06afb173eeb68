"""A stdlib-only HTTP client for one ComfyUI server, and the mask-in-alpha image LoadImage reads."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import ComfyUIError, PromptRejected
from .results import PromptResult, parse_history


def _encode_png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def image_with_mask_alpha(image: Any, mask: Any):
    """An RGBA PIL image whose alpha encodes `mask` for LoadImage's MASK output.

    LoadImage returns `1 - alpha`, so a white (255 = edit here) mask becomes alpha 0 there.
    `mask` is a PIL image (any mode, converted to L) of the same size as `image`.
    """
    from PIL import ImageOps

    rgb = image.convert("RGB")
    grey = mask.convert("L")
    if grey.size != rgb.size:
        raise ValueError(f"mask size {grey.size} differs from image size {rgb.size}; resize the mask first.")
    rgba = rgb.copy()
    rgba.putalpha(ImageOps.invert(grey))
    return rgba


class ComfyUIClient:
    """Stdlib-only HTTP client for one ComfyUI server (`http://host:port`)."""

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str | None = None,
        health_check: Callable[[], None] | None = None,
        request_timeout: float = 60.0,
    ):
        self.base_url = base_url.rstrip("/")
        # ComfyUI only reports cached nodes' UI outputs (images) when the prompt has a client id.
        self.client_id = client_id or uuid.uuid4().hex
        self._health_check = health_check
        self.request_timeout = request_timeout

    # -- raw HTTP -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] = ()):
        req = urllib.request.Request(self.base_url + path, data=body, method=method, headers=dict(headers))
        return urllib.request.urlopen(req, timeout=self.request_timeout)

    def get_json(self, path: str) -> Any:
        with self._request("GET", path) as resp:
            return json.loads(resp.read())

    def post_json(self, path: str, payload: Any) -> bytes:
        data = json.dumps(payload).encode()
        with self._request("POST", path, data, {"Content-Type": "application/json"}) as resp:
            return resp.read()

    # -- API ----------------------------------------------------------------------------------
    def object_info(self, node_class: str | None = None) -> dict[str, Any]:
        """/object_info: every node type with its inputs (or one type's entry)."""
        if node_class:
            return self.get_json("/object_info/" + urllib.parse.quote(node_class))
        return self.get_json("/object_info")

    def upload_image(
        self,
        image: Any,
        *,
        name: str | None = None,
        subfolder: str = "",
        overwrite: bool = True,
        folder_type: str = "input",
    ) -> str:
        """Upload a path, bytes or PIL image to ComfyUI's input folder (multipart /upload/image).

        Returns the value LoadImage / LoadImageMask expect for their `image` widget
        (`"subfolder/name"` or `"name"`). Masks are images too: use `image_with_mask_alpha` for
        LoadImage's MASK output, or a grey PNG with LoadImageMask(channel="red").
        """
        if isinstance(image, (str, Path)):
            path = Path(image)
            data = path.read_bytes()
            name = name or path.name
        elif isinstance(image, (bytes, bytearray)):
            data = bytes(image)
            name = name or f"upload_{uuid.uuid4().hex[:8]}.png"
        else:  # PIL image
            data = _encode_png(image)
            name = name or f"upload_{uuid.uuid4().hex[:8]}.png"
        boundary = uuid.uuid4().hex
        fields = {"subfolder": subfolder, "type": folder_type, "overwrite": "true" if overwrite else "false"}
        parts = []
        for key, value in fields.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
            )
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        body = b"".join(parts)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        with self._request("POST", "/upload/image", body, headers) as resp:
            answer = json.loads(resp.read())
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def queue_prompt(self, api_prompt: Mapping[str, Any], *, prompt_id: str | None = None) -> str:
        """POST /prompt; returns the prompt id. Raises `PromptRejected` (with ComfyUI's JSON) when
        validation fails."""
        payload: dict[str, Any] = {"prompt": dict(api_prompt), "client_id": self.client_id}
        if prompt_id:
            payload["prompt_id"] = prompt_id
        try:
            answer = json.loads(self.post_json("/prompt", payload))
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = {"error": {"message": raw.decode(errors="replace")}, "node_errors": {}}
            if err.code == 400:
                raise PromptRejected(parsed) from None
            raise ComfyUIError(f"POST /prompt failed with HTTP {err.code}: {raw[:2000]!r}") from None
        return answer["prompt_id"]

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        return self.get_json("/history/" + urllib.parse.quote(prompt_id)).get(prompt_id)

    def view(self, filename: str, subfolder: str = "", folder_type: str = "output") -> bytes:
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": folder_type})
        with self._request("GET", "/view?" + query) as resp:
            return resp.read()

    def wait(
        self, prompt_id: str, timeout: float = 120.0, *, poll_s: float = 0.1, download: bool = True
    ) -> PromptResult:
        """Poll /history until the prompt finished; returns a `PromptResult` (also on failure:
        call `.raise_for_error()` to turn a failed node into an exception)."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.history(prompt_id)
            if entry is not None:  # ComfyUI adds the history entry when the prompt is done
                return parse_history(prompt_id, entry, self.view if download else None)
            if self._health_check is not None:
                self._health_check()
            if time.monotonic() > deadline:
                queue = self.get_json("/queue")
                raise TimeoutError(
                    f"prompt {prompt_id} did not finish within {timeout:.0f} s "
                    f"(running: {len(queue.get('queue_running', []))}, pending: "
                    f"{len(queue.get('queue_pending', []))}). Raise the timeout or call interrupt()."
                )
            time.sleep(poll_s)

    def run(
        self, api_prompt: Mapping[str, Any], timeout: float = 120.0, *, download: bool = True
    ) -> PromptResult:
        """queue_prompt + wait."""
        return self.wait(self.queue_prompt(api_prompt), timeout, download=download)

    def queue(self) -> dict[str, Any]:
        """/queue: `queue_running` and `queue_pending` lists (each item: number, prompt_id, ...)."""
        return self.get_json("/queue")

    def is_running(self, prompt_id: str) -> bool:
        return any(item[1] == prompt_id for item in self.queue().get("queue_running", []))

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running prompt (only if it is `prompt_id`, when given); it ends "interrupted"."""
        self.post_json("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def free(self, unload_models: bool = True, free_memory: bool = True) -> None:
        """Ask ComfyUI to unload models / free memory (done between prompts).

        ComfyUI's prompt worker reads these flags only when it wakes: one that lands after it read
        them for the prompt just finished and before it waits again is acted on at the next prompt
        (or when that wait times out). Re-send until the effect shows when it must happen now.
        """
        self.post_json("/free", {"unload_models": unload_models, "free_memory": free_memory})
