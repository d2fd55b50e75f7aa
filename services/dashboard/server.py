"""uvicorn in a thread of the service process, so the bus (its own threads) and the web server share one
process and one SIGTERM: the runner's stop hook asks uvicorn to finish (open event streams are cut after a
short grace period), then the bus publishes ``offline`` and disconnects.

The listening socket is bound before anything starts, so a port in use is one clear error at start-up.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket (IPv4 or IPv6 by the host's form). Raises OSError (e.g. port in use)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class WebServer:
    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        import uvicorn  # the web stack loads only once the configuration is known to be good

        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            proxy_headers=False,  # no trust in X-Forwarded-* by default: anyone could claim to be local
        )
        self.server = uvicorn.Server(config)
        self.sock = sock
        self.thread = threading.Thread(target=self._run, name="web", daemon=True)

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> None:
        self.thread.start()

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def stop(self, timeout: float = 5.0) -> None:
        close_streams = getattr(self.server.config.app.state, "close_streams", None)
        if close_streams:
            close_streams()
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()
