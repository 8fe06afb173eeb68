"""Fetch a known model folder from a Hugging Face hub on first use: resumable, with progress.

``fetch_model(model, target)`` downloads the files of ``model.repo_id`` that match its patterns into
a hidden sibling ``.<name>.partial/`` and renames it to ``target`` only when every file is complete,
so a folder the loader lists is never half there. A killed or cancelled download resumes where it
stopped: finished files are kept in the ``.partial`` folder, and a file cut off half-way is continued
with an HTTP ``Range`` request for its missing bytes (`download_file`). Only the user's hub token
(``get_token``) comes from huggingface_hub; the listing (``/api/models/<repo>/revision/main``) and
the bytes (``/<repo>/resolve/<commit>/<file>``) are fetched here with the standard library, because
recent huggingface_hub releases no longer resume a download across processes.

The hub is the one ``HF_ENDPOINT`` names (huggingface.co by default; read on every call, so a
mirror set after start-up counts). ``HF_HUB_OFFLINE=1`` is honoured: nothing is contacted and
`ModelFetchError` says what to do instead. Progress is reported as ``progress(done_bytes,
total_bytes)``; the callback may raise to cancel (ComfyUI's interrupt does).
"""

from __future__ import annotations

import fnmatch
import json
import os
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .model_catalogue import KnownModel

Progress = Callable[[int, int], None]
DOWNLOAD_HELPER = "python -m devkit.download_models"


class ModelFetchError(RuntimeError):
    """The model could not be fetched; the message says why and what to do."""


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or "https://huggingface.co"


def partial_folder(target: Path) -> Path:
    return target.parent / f".{target.name}.partial"


def _manual_steps(model: KnownModel, target: Path) -> str:
    return (
        f"Download it where ComfyUI has network access (`huggingface-cli download {model.repo_id} "
        f"--local-dir {target}`, or the pack's `{DOWNLOAD_HELPER}`), or copy the folder to {target}; "
        "then press R in the browser."
    )


def fetch_model(model: KnownModel, target: Path, progress: Progress | None = None) -> Path:
    """Download ``model`` into ``target`` (a folder that does not exist yet) and return it."""
    if hub_offline():
        raise ModelFetchError(
            f"MIND-Edit: {model.folder} is not in {target.parent} and the hub is switched off "
            f"(HF_HUB_OFFLINE=1), so it cannot be fetched from {model.repo_id} now. "
            + _manual_steps(model, target)
        )
    endpoint = hub_endpoint()
    headers = _auth_headers()
    info_url = f"{endpoint}/api/models/{model.repo_id}/revision/main?blobs=true"
    try:
        with urllib.request.urlopen(
            urllib.request.Request(info_url, headers=headers), timeout=30
        ) as response:
            info = json.load(response)
    except (OSError, ValueError) as exc:
        raise ModelFetchError(
            f"MIND-Edit: could not reach {endpoint} to fetch {model.repo_id} ({type(exc).__name__}: {exc}). "
            "Check the network (or HF_ENDPOINT, for a mirror). " + _manual_steps(model, target)
        ) from exc
    files = [
        (s["rfilename"], int(s.get("size") or 0))
        for s in info.get("siblings") or []
        if any(fnmatch.fnmatch(s["rfilename"], pattern) for pattern in model.allow_patterns)
    ]
    if not files:
        raise ModelFetchError(
            f"MIND-Edit: {model.repo_id} at {endpoint} has no file matching {list(model.allow_patterns)}."
        )
    total = sum(size for _, size in files)
    staging = partial_folder(target)
    revision = info.get("sha") or "main"
    done = 0
    for name, size in files:
        url = f"{endpoint}/{model.repo_id}/resolve/{revision}/{urllib.parse.quote(name)}"
        report = (lambda n, base=done: progress(base + n, total)) if progress else (lambda n: None)
        try:
            download_file(url, staging / name, size, headers, report)
        except (OSError, ValueError) as exc:
            raise ModelFetchError(
                f"MIND-Edit: fetching {model.repo_id} from {endpoint} stopped at {name} "
                f"({type(exc).__name__}: {exc}). Run the node again to resume where it stopped. "
                + _manual_steps(model, target)
            ) from exc
        done += size
    if progress:
        progress(total, total)
    staging.rename(target)
    return target


CHUNK = 1 << 20


def _auth_headers() -> dict[str, str]:
    """The user's hub token (gated or private repositories), as huggingface_hub finds it."""
    try:
        from huggingface_hub import get_token
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        token = os.environ.get("HF_TOKEN")
    else:
        token = get_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def download_file(url: str, dest: Path, size: int, headers: dict, report: Callable[[int], None]) -> Path:
    """Fetch ``url`` into ``dest`` through ``dest.part``, resuming a ``.part`` left by an earlier try
    (an HTTP ``Range`` request for the missing bytes). ``report(bytes_so_far)`` after each chunk; an
    exception it raises (a cancel) leaves the ``.part`` for the next try."""
    if dest.is_file() and (size == 0 or dest.stat().st_size == size):
        report(size)
        return dest
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    if size and have > size:
        have = 0
    if not size or have < size:
        request = urllib.request.Request(
            url, headers={**headers, **({"Range": f"bytes={have}-"} if have else {})}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            if have and response.status != 206:  # the server ignored the range: start over
                have = 0
            with open(part, "ab" if have else "wb") as out:
                report(have)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    have += len(chunk)
                    report(have)
    if size and have != size:
        raise ValueError(f"got {have} of {size} bytes")
    part.rename(dest)
    return dest
