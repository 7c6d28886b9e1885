"""A real HTTP server on 127.0.0.1 (an ephemeral port) for the notifier and changelog tests:
it records every request and answers with a fixed status and body. End-to-end tests give the
host end of a sandbox host's link as `address`, so the host reaches it directly."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LocalServer:
    url: str
    requests: list[Received] = field(default_factory=list)


@contextmanager
def local_server(status: int = 200, answer: Any = "ok", address: str = "127.0.0.1") -> Iterator[LocalServer]:
    server_state = LocalServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            server_state.requests.append(Received(self.path, dict(self.headers.items()), body))
            data = answer if isinstance(answer, bytes) else (
                answer.encode() if isinstance(answer, str) else json.dumps(answer).encode())
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((address, 0), Handler)
    server_state.url = f"http://{address}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
