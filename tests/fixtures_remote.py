"""Remote VLM fixtures: the OpenAI-compatible stand-in server on 127.0.0.1, and an environment with
none of the pack's remote settings (the API key and the allowed hosts) inherited from the shell."""

from __future__ import annotations

import pytest

from devkit.openai_standin import StandInServer
from mindedit_core.remote import ALLOWED_HOSTS_ENV, API_KEY_ENV


@pytest.fixture
def standin():
    server = StandInServer()
    yield server
    server.close()


@pytest.fixture
def no_remote_env(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.delenv(ALLOWED_HOSTS_ENV, raising=False)
