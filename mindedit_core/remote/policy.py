"""Where the remote VLM backend may send an artist's images, and the one place its API key comes from.

A shared workflow is someone else's file: its widget values must not be able to send the artist's
images or secrets anywhere. So:

- a base URL on a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``) works out of the box;
- any other host only when the artist's own environment lists it in `ALLOWED_HOSTS_ENV`
  (comma-separated ``host`` or ``host:port`` entries; ``*`` allows every host), never a widget;
- the API key is read only from `API_KEY_ENV` (the pack's own variable, whose name no workflow
  value can change), when the request is made: it is never a widget value, so it is never in a
  saved workflow, in ``/prompt`` or in the node's outputs;
- user names or passwords inside the URL are refused (they would be saved with the workflow).
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Mapping

ALLOWED_HOSTS_ENV = "MINDEDIT_VLM_ALLOWED_HOSTS"
API_KEY_ENV = "MINDEDIT_VLM_API_KEY"
DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama's OpenAI-compatible API


class RemoteURLRefused(ValueError):
    """A base URL the policy does not allow (the message says why and what to do)."""


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(environ: Mapping[str, str] | None = None) -> set[str]:
    """The artist's allow-list: lower-case ``host`` / ``host:port`` entries (``*``: any host)."""
    value = (os.environ if environ is None else environ).get(ALLOWED_HOSTS_ENV, "")
    return {entry.strip().lower().strip("/") for entry in value.split(",") if entry.strip()}


def check_base_url(base_url: str, environ: Mapping[str, str] | None = None) -> str:
    """The base URL without surrounding spaces or trailing slash, or `RemoteURLRefused`."""
    url = (base_url or "").strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteURLRefused(
            f"MIND-Edit remote VLM: {url!r} is not an http(s) URL. Give the server's OpenAI-compatible base "
            f"URL, e.g. {DEFAULT_BASE_URL} (Ollama), http://127.0.0.1:1234/v1 (LM Studio), "
            "http://127.0.0.1:8000/v1 (vLLM)."
        )
    if parts.query or parts.fragment:
        raise RemoteURLRefused(
            f"MIND-Edit remote VLM: {url!r} has a query or fragment; give the plain base URL ending in /v1, "
            f"e.g. {DEFAULT_BASE_URL}."
        )
    if parts.username or parts.password:
        raise RemoteURLRefused(
            f"MIND-Edit remote VLM: the URL carries a user name or password; it would be saved in the "
            f"workflow. Remove it and put the key in the environment variable {API_KEY_ENV} instead."
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise RemoteURLRefused(f"MIND-Edit remote VLM: {url!r} has an invalid port ({exc}).") from exc
    host = parts.hostname.lower()
    if is_loopback_host(host):
        return url
    allowed = allowed_hosts(environ)
    with_port = f"{host}:{port}" if port is not None else None
    if "*" in allowed or host in allowed or (with_port and with_port in allowed):
        return url
    raise RemoteURLRefused(
        f"MIND-Edit remote VLM: {url} is not on this computer, and the workflow cannot choose to send your "
        f"images there. Loopback servers (127.0.0.1, localhost) work as they are. To allow {host}, set the "
        f"environment variable {ALLOWED_HOSTS_ENV}={host}{':' + str(port) if port else ''} (comma-separated "
        "entries) before starting ComfyUI."
    )


def api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The key sent as ``Authorization: Bearer``: `API_KEY_ENV`'s value, or None (local servers)."""
    value = (os.environ if environ is None else environ).get(API_KEY_ENV, "").strip()
    return value or None
