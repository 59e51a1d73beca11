"""Run the dashboard with uvicorn: in the foreground (``pacsradar serve``) or in a thread (tests)."""

from __future__ import annotations

import ipaddress
import threading

import uvicorn
from fastapi import FastAPI

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    # access_log off: a request line may carry ?token=; ws off: no websocket stack needed.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ws="none",
        lifespan="off",
        server_header=False,
        date_header=False,
    )


def serve(app: FastAPI, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (Ctrl-C)."""
    uvicorn.Server(_config(app, host, port)).run()


class DashboardServer:
    """The dashboard on a background thread: ``with DashboardServer(app, port) as url: ...``."""

    def __init__(self, app: FastAPI, *, host: str = DEFAULT_HOST, port: int) -> None:
        self.server = uvicorn.Server(_config(app, host, port))
        self.thread = threading.Thread(target=self.server.run, name="pacsradar-dashboard", daemon=True)
        self.url = f"http://{host}:{port}"

    def __enter__(self) -> str:
        self.thread.start()
        started = threading.Event()
        # uvicorn sets ``started`` once the socket listens; poll it with a bounded wait.
        for _ in range(600):
            if self.server.started:
                started.set()
                break
            if not self.thread.is_alive():
                break
            self.thread.join(timeout=0.05)
        if not started.is_set():
            self.server.should_exit = True
            raise RuntimeError("the dashboard did not start")
        # Port 0 lets the kernel choose (no race between picking a port and binding it): the
        # URL names the port actually bound.
        sockets = [sock for srv in self.server.servers for sock in srv.sockets]
        if sockets:
            host, port = sockets[0].getsockname()[:2]
            self.url = f"http://{host}:{port}"
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "DashboardServer", "is_loopback", "serve"]
