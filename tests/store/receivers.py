"""Local alert receivers on 127.0.0.1: a webhook endpoint, an SMTP server (aiosmtpd), syslog/UDP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    #: status codes to answer, in order; 200 once they run out.
    statuses: list[int] = field(default_factory=list)


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[WebhookReceiver]:
    state = WebhookReceiver(url="", statuses=list(statuses or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                state.requests.append(Received(self.path, dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/pacsradar"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class SmtpReceiver:
    host: str
    port: int
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    from aiosmtpd.controller import Controller

    state = SmtpReceiver(host="127.0.0.1", port=0)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            state.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
            )
            return "250 Message accepted for delivery"

    class PortZeroController(Controller):
        """Binds port 0; aiosmtpd's readiness probe then dials the port the kernel chose."""

        def _trigger_server(self) -> None:
            self.port = state.port = int(self.server.sockets[0].getsockname()[1])
            super()._trigger_server()

    controller = PortZeroController(Handler(), hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield state
    finally:
        controller.stop()


@contextmanager
def syslog_receiver() -> Iterator[tuple[tuple[str, int], socket.socket]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    try:
        yield ("127.0.0.1", int(sock.getsockname()[1])), sock
    finally:
        sock.close()
