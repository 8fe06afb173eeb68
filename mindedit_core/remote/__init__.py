"""VLMs served over an OpenAI-compatible chat-completions API (Ollama, LM Studio, vLLM, llama.cpp's
server, hosted APIs): the one chat client (`chat_client`, shared with ``training.refine_data``), the
URL / API-key policy (`policy`) and the refinement backend (`vlm.RemoteVLM`).

Importing this package imports only the standard library; `vlm` imports torch (through the pass options).
"""

from .chat_client import ChatCancelled, ChatClient, ChatReply, ChatRequestError, openai_messages
from .policy import (
    ALLOWED_HOSTS_ENV,
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    RemoteURLRefused,
    api_key,
    check_base_url,
    is_loopback_host,
)

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "API_KEY_ENV",
    "DEFAULT_BASE_URL",
    "ChatCancelled",
    "ChatClient",
    "ChatReply",
    "ChatRequestError",
    "RemoteURLRefused",
    "api_key",
    "check_base_url",
    "is_loopback_host",
    "openai_messages",
]
