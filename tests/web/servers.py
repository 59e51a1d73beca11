"""Small HTTP peers for the web tests, on 127.0.0.1 only: hostile servers (raw asyncio), a
login portal (aiohttp) and a stdlib-TLS terminating proxy (to put HTTPS in front of Orthanc)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

LOOPBACK = "127.0.0.1"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_head(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


def _bomb() -> bytes:
    # 256 MiB of zeros compress to ~250 KiB: a 1000:1 decompression bomb.
    return gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)


_BOMB: bytes | None = None


def bomb_body() -> bytes:
    global _BOMB
    if _BOMB is None:
        _BOMB = _bomb()
    return _BOMB


async def redirect_loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await _read_head(reader)
        if reader.at_eof():
            return
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()


async def huge_content_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2147483648\r\n\r\n<html>")
    await writer.drain()
    await asyncio.sleep(3600)  # the rest never arrives


async def gzip_bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    body = bomb_body()
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()


async def megabyte_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * (1024 * 1024) + b"\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(3600)


async def ssh_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    await writer.drain()
    await asyncio.sleep(3600)


HOSTILE: dict[str, Handler] = {
    "redirect-loop": redirect_loop,
    "2gb-content-length": huge_content_length,
    "gzip-bomb": gzip_bomb,
    "megabyte-headers": megabyte_headers,
    "non-http-banner": ssh_banner,
}


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """Yields (port, connection counter)."""
    connections = [0]
    writers: set[asyncio.StreamWriter] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        writers.add(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(wrapped, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, connections
    finally:
        server.close()
        _abort(writers)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


def _abort(writers: set[asyncio.StreamWriter]) -> None:
    for writer in writers:  # Server.abort_clients() is Python 3.13+
        writer.transport.abort()


# ----------------------------------------------------------------------------- login portal

LOGIN_PAGE = """<!doctype html><html><head><title>Radiology Portal</title></head><body>
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{token}">
<input type="text" name="username"><input type="password" name="password">
<button type="submit">Sign in</button></form>{message}</body></html>"""


class Portal:
    """A toy PACS portal. ``accept`` decides which (user, password) pairs log in."""

    def __init__(self, accept: Callable[[str, str], bool], *, lockout_after: int | None = None):
        self.accept = accept
        self.lockout_after = lockout_after
        self.logins: list[tuple[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.root)
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_get("/studies", self.studies)
        return app

    async def root(self, request: web.Request) -> web.StreamResponse:
        if request.cookies.get("session") == "ok":
            raise web.HTTPFound("/studies")
        raise web.HTTPFound("/login")

    async def login_page(self, request: web.Request) -> web.Response:
        return web.Response(text=LOGIN_PAGE.format(token="t0k3n", message=""),
                            content_type="text/html")  # fmt: skip

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        self.logins.append((user, password))
        if self.lockout_after is not None and len(self.logins) > self.lockout_after:
            return web.Response(status=429, text="Too many attempts", headers={"Retry-After": "60"})
        if self.accept(user, password):
            response = web.HTTPFound("/studies")
            response.set_cookie("session", "ok")
            raise response
        return web.Response(
            text=LOGIN_PAGE.format(token="t0k3n", message="<p>Invalid username or password</p>"),
            content_type="text/html",
        )

    async def studies(self, request: web.Request) -> web.Response:
        if request.cookies.get("session") != "ok":
            raise web.HTTPFound("/login")
        return web.Response(text="<html><title>Worklist</title><body>3 studies</body></html>",
                            content_type="text/html")  # fmt: skip


@contextlib.asynccontextmanager
async def run_app(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port
    finally:
        await runner.cleanup()


# ----------------------------------------------------------------------------- TLS proxy


@contextlib.asynccontextmanager
async def tls_proxy(target_port: int, cert: Path, key: Path) -> AsyncIterator[int]:
    """HTTPS in front of a plain-HTTP peer: TLS 1.2+ with the stdlib's default (strong) suites.

    Debian's Orthanc 1.10.1 crashes on its first HTTPS connection with SslEnabled in this
    environment, so the hardened scenario terminates TLS here instead.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(Exception):
            dst.close()

    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, LOOPBACK, 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        _abort(writers)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
