"""The lifecycle every fake API in ``sim/`` shares: a threaded HTTP server on loopback (or a given host), served from
a daemon thread, stopped without waiting for requests held open on purpose."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LocalServer:
    """Base of the fakes. A subclass sets its own state first, then calls ``serve_on`` with its handler class."""

    url_path = ""  # what ``url`` adds after host and port (an API's fixed path)
    thread_name = "fake-api"

    def serve_on(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        # Set at stop: a request a fault holds open (a hang) waits on it, so stopping never waits out the hang.
        self.released = threading.Event()
        self._serving = False

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.url_path}"

    def start(self) -> Self:
        self._serving = True
        thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (a simulator run as its own process)."""
        self._serving = True
        self.httpd.serve_forever()

    def stop(self) -> None:
        if self.released.is_set():
            return
        self.released.set()
        if self._serving:  # shutdown() waits for a serve loop: never call it when none ran
            self.httpd.shutdown()
        self.httpd.server_close()
