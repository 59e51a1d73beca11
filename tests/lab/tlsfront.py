"""A TLS-terminating TCP relay on 127.0.0.1, standing in for Orthanc's own HTTPS.

Why: on Debian 12, Orthanc 1.10.1 uses libcivetweb1 1.15, which resolves
``SSL_get_peer_certificate`` with dlsym from libssl.so.3; OpenSSL 3 only exports
``SSL_get0/1_peer_certificate``, so civetweb calls a NULL pointer and Orthanc dies with
SIGSEGV on the first TLS handshake when ``SslEnabled`` is true (verified with gdb:
``#0 0x0 in ?? ()`` / ``#1 libcivetweb.so.1`` in a civetweb-worker thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import ssl
from pathlib import Path

from lab.aiothread import LoopThread
from lab.ports import LOOPBACK

__all__ = ["TlsFront", "native_orthanc_https_broken"]


def native_orthanc_https_broken() -> bool:
    """True when the installed civetweb would crash Orthanc on TLS (see module docstring)."""
    libs = glob.glob("/usr/lib/*/libcivetweb.so.*") + glob.glob("/lib/*/libcivetweb.so.*")
    ssl_libs = glob.glob("/usr/lib/*/libssl.so.3") + glob.glob("/lib/*/libssl.so.3")
    if not libs or not ssl_libs:
        return False
    civetweb = Path(libs[0]).read_bytes()
    libssl = Path(ssl_libs[0]).read_bytes()
    wants_old_symbol = b"SSL_get1_peer_certificate" not in civetweb
    return wants_old_symbol and b"SSL_get_peer_certificate\x00" not in libssl


class TlsFront:
    """Accept TLS (>= 1.2) on ``127.0.0.1:port`` and relay plaintext to ``backend_port``."""

    def __init__(self, certfile: Path, backend_port: int, port: int = 0) -> None:
        self.backend_port = backend_port
        self.port = port
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ctx.load_cert_chain(str(certfile))  # PEM with key and certificate
        self._loop: LoopThread | None = None
        self._server: asyncio.Server | None = None
        # Strong references to the relays: a relay whose TLS transport went away without a
        # wake-up is otherwise only held by its own reference cycle, and the garbage collector
        # destroys it pending in the middle of some later test ("coroutine ignored
        # GeneratorExit"). Held here, stop() cancels it like any other.
        self._relays: set[asyncio.Task[None]] = set()

    def start(self) -> int:
        self._loop = LoopThread("tls-front")
        try:
            self._loop.run(self._start())
        except BaseException:
            self._loop.close()
            raise
        return self.port

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._relay, LOOPBACK, self.port, ssl=self._ctx, ssl_handshake_timeout=10
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.run(self._stop())
            self._loop.close()  # cancels relays still running
            self._loop = None

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        backend_w: asyncio.StreamWriter | None = None
        me = asyncio.current_task()
        if me is not None:
            self._relays.add(me)
            me.add_done_callback(self._relays.discard)
        try:
            backend_r, backend_w = await asyncio.open_connection(LOOPBACK, self.backend_port)
            await asyncio.gather(_pipe(client_r, backend_w), _pipe(backend_r, client_w))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in (client_w, backend_w):
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await writer.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
