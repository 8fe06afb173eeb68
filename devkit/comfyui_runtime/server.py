"""A headless ComfyUI subprocess: its base directory (pack, models, input/output), start-up on a
free port, readiness, its log, and a stop that takes its whole process group."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterable, Mapping
from pathlib import Path

from .client import ComfyUIClient
from .errors import ComfyUIError, ComfyUIStartError
from .tree import REPO_ROOT, cli_args_text, comfyui_root, supports_whitelist

PACK_FOLDER_NAME = "ComfyUI-MIND-Edit"
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        ComfyUI lists it under (the value for loader widgets such as `ckpt_name`): ``name``, else the
        name of ``path`` as given. A ``path`` that is itself a link (a models folder of links, a hub
        cache's snapshot pointing at a hash-named blob) keeps its own name; only the target is resolved."""
        name = name or Path(path).name
        path = Path(path).resolve()
        if not path.exists():
            raise FileNotFoundError(f"model file {path} does not exist (for models/{folder}/).")
        if self.base_dir is None:
            self._models.setdefault(folder, []).append((path, name))
            return name
        dest_dir = self.base_dir / "models" / folder
        dest_dir.mkdir(parents=True, exist_ok=True)
        self._link(dest_dir / name, path)
        return name

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
        if "--disable-api-nodes" in cli_args_text(root):
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

    def _proc_status_bytes(self, field: str) -> int | None:
        if self.process is None:
            return None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return None

    def peak_rss_bytes(self) -> int | None:
        """Peak resident memory of the server process (Linux VmHWM), or None if unknown."""
        return self._proc_status_bytes("VmHWM")

    def rss_bytes(self) -> int | None:
        """Resident memory of the server process now (Linux VmRSS), or None if unknown."""
        return self._proc_status_bytes("VmRSS")

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
