"""A tiny scripted HTTP server for client fuzzing: every request gets the current ``Reply`` (status, headers,
body), delivered normally, truncated (Content-Length promises more than is sent), slowly, or not at all (the
connection is closed without an answer)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "normal"  # normal | truncated | slow | close
    delay_s: float = 0.0


class ScriptedServer:
    def __init__(self) -> None:
        self.reply = Reply()
        self.requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self._answer()

            def _answer(self) -> None:
                with server._lock:
                    server.requests += 1
                    r = server.reply
                try:
                    if r.mode == "close":
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    self.send_response(r.status)
                    if r.content_type:
                        self.send_header("Content-Type", r.content_type)
                    for k, v in r.headers.items():
                        self.send_header(k, v)
                    promised = len(r.body) + (1000 if r.mode == "truncated" else 0)
                    self.send_header("Content-Length", str(promised))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if r.mode == "slow":
                        time.sleep(r.delay_s)
                    self.wfile.write(r.body)
                    self.wfile.flush()
                    self.close_connection = True
                except OSError:
                    pass  # the client gave up (timeout): that is the point of some cases

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
