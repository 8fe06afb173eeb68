"""A stand-in OpenAI-compatible chat-completions server (stdlib, 127.0.0.1 only) for tests, benchmarks
and trying the remote VLM backend without a real one.

The requested model name picks the behaviour, so a workflow's ``model`` widget can choose it:

- any other name: a well-formed answer in the style the system prompt asks for, after ``delay_s``
  (a name ``slow-<seconds>`` waits that long instead);
- ``stall``: never answers (until the client hangs up or the server closes);
- ``missing``: HTTP 404 as Ollama words a model that is not pulled;
- ``text-only``: HTTP 400 as servers word a model that cannot take images;
- ``error-500``: HTTP 500; ``error-503``: HTTP 503 (retryable);
- ``malformed``: HTTP 200 with a body that is not a chat completion;
- ``empty``: HTTP 200 with an empty answer;
- ``blind``: HTTP 200, answering as a text-only model does when the server drops the image;
- ``echo-auth``: HTTP 401 whose body repeats the Authorization header (a badly behaved server).

Every request is recorded (`StandInServer.requests`): path, headers, parsed body, the decoded image
bytes and the body size. ``python -m devkit.openai_standin --port 11434`` serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SD_ANSWER = 'optimized_prompt: "red brick wall, warm sunset light, same framing"\nnegative_prompt: "blurry, grey wall"'
INSTRUCTION_ANSWER = (
    'edit_instruction: "Turn the sky into a warm orange sunset with soft clouds; keep the buildings, '
    'people and framing unchanged"\nnegative_prompt: "grey overcast sky, blurry, oversaturated"'
)


@dataclass
class Recorded:
    path: str
    headers: dict
    body: dict
    body_bytes: int
    images: list[bytes] = field(default_factory=list)


def _images(body: dict) -> list[bytes]:
    found = []
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            url = (part.get("image_url") or {}).get("url", "") if isinstance(part, dict) else ""
            if url.startswith("data:") and "," in url:
                found.append(base64.b64decode(url.split(",", 1)[1]))
    return found


class StandInServer:
    def __init__(self, *, port: int = 0, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.requests: list[Recorded] = []
        self.closing = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # /v1/models, as servers list them
                self._send(200, {"object": "list", "data": [{"id": "stand-in", "object": "model"}]})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                record = Recorded(self.path, dict(self.headers), body, len(raw), _images(body))
                with server.lock:
                    server.requests.append(record)
                server.answer(self, body)

            def _send(self, status: int, payload, *, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client hung up (Cancel): nothing to answer
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def answer(self, handler, body: dict) -> None:
        model = str(body.get("model", ""))
        system = ""
        for message in body.get("messages", []):
            if message.get("role") == "system":
                system = message.get("content") if isinstance(message.get("content"), str) else ""
        if model == "stall":
            self.closing.wait(120)
            return
        errors = {
            "missing": (404, {"error": {"message": f'model "{model}" not found, try pulling it first'}}),
            "text-only": (400, {"error": {"message": "this model does not support image input"}}),
            "error-500": (500, {"error": {"message": "llama runner process has terminated"}}),
            "error-503": (503, {"error": {"message": "server busy"}}),
            "echo-auth": (401, {"error": f"invalid key: {handler.headers.get('Authorization')}"}),
        }
        if model in errors:
            handler._send(*errors[model])
            return
        if model == "malformed":
            handler._send(200, None, raw=b"<html>upstream proxy error</html>")
            return
        delay = float(model.split("-", 1)[1]) if model.startswith("slow-") else self.delay_s
        if delay:
            time.sleep(delay)
        text = "" if model == "empty" else (INSTRUCTION_ANSWER if "edit_instruction" in system else SD_ANSWER)
        if model == "blind":
            text = "I'm sorry, but I can't see any image in your message. Could you describe it?"
        handler._send(
            200,
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 30, "total_tokens": 130},
            },
        )

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    server = StandInServer(port=args.port, delay_s=args.delay)
    print(f"stand-in OpenAI-compatible server at {server.base_url} (Ctrl-C stops it)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
