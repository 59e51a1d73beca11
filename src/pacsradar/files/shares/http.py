"""Open web directory listings (nginx/Apache autoindex): follow links inside the listing only, and
read file headers with HTTP Range requests (RFC 9110 §14).

http.client is used (not httpx) because it neither logs request URLs (which can hold patient
names) nor follows redirects on its own.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import threading
import time
from html import unescape
from urllib.parse import unquote, urljoin, urlsplit

from pacsradar.files.shares.base import Entry, ShareDenied, ShareError

MAX_LISTING_BYTES = 4 * 1024 * 1024
_HREF = re.compile(rb"""<a\s[^>]*?href\s*=\s*["']([^"'<>]{1,2048})["']""", re.IGNORECASE)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_LISTING_MARKERS = (b"Index of /", b"<title>Index of", b"Directory listing for")


def _insecure_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


#: Largest single read of a body: the time budget is checked between reads.
_READ_CHUNK = 64 * 1024


def _drop(socks: list[socket.socket]) -> None:
    """Watchdog: end a blocked read at once (shutdown wakes a recv in another thread)."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class HttpClient:
    def __init__(
        self, host: str, port: int, *, tls: bool, timeout: float, deadline: float | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.timeout = timeout
        #: ``time.monotonic()`` by which every request must be over (the scan's ``--deadline``).
        #: Per-read timeouts alone do not bound a peer that trickles a byte per timeout.
        self.deadline = deadline
        self.server = ""

    def _left(self) -> float:
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ShareError("HTTP listing ran out of its time budget")
        return left

    def _request(self, path: str, headers: dict[str, str], limit: int) -> tuple[int, dict[str, str], bytes]:
        left = self._left()
        timeout = min(self.timeout, left)
        conn: http.client.HTTPConnection
        if self.tls:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=_insecure_context()
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        # Status line and headers are read line by line inside http.client: only a watchdog
        # bounds them in wall-clock time (a peer can send one header byte per timeout).
        # The socket is kept here: http.client drops ``conn.sock`` once a response that ends
        # with the connection (no length) is under way, but our reads still go through it.
        socks: list[socket.socket] = []
        watchdog = threading.Timer(left, _drop, (socks,)) if self.deadline is not None else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        try:
            conn.connect()
            if conn.sock is not None:
                socks.append(conn.sock)
            conn.request("GET", path, headers={"User-Agent": "pacsradar", **headers})
            resp = conn.getresponse()
            body = bytearray()
            while len(body) < limit:
                # Small reads against the remaining budget, never one blocking read(limit).
                timeout = min(self.timeout, self._left())
                for sock in socks:
                    sock.settimeout(timeout)
                data = resp.read1(min(_READ_CHUNK, limit - len(body)))
                if not data:
                    break
                body += data
            if self.deadline is not None and time.monotonic() >= self.deadline:
                # The watchdog cut the body short: never take a partial listing for a whole one.
                raise ShareError("HTTP listing ran out of its time budget")
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, bytes(body)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                raise ShareError("HTTP listing ran out of its time budget") from exc
            raise ShareError(f"HTTP request failed ({type(exc).__name__})") from exc
        finally:
            if watchdog is not None:
                watchdog.cancel()
            conn.close()

    def is_listing(self, path: str) -> bool:
        status, headers, body = self._request(path, {}, MAX_LISTING_BYTES)
        self.server = headers.get("server", "")
        return status == 200 and any(marker in body[:4096] for marker in _LISTING_MARKERS)

    def listdir(self, path: str) -> list[Entry]:
        status, _headers, body = self._request(path, {}, MAX_LISTING_BYTES)
        if status in (401, 403):
            raise ShareDenied("HTTP listing refused")
        if status != 200:
            raise ShareError(f"HTTP listing answered {status}")
        base = path if path.endswith("/") else path + "/"
        entries: list[Entry] = []
        seen: set[str] = set()
        for match in _HREF.finditer(body):
            href = unescape(match.group(1).decode("latin-1"))
            target = urlsplit(urljoin(base, href))
            # Stay inside this listing: same server, below the current directory, no queries.
            if target.scheme or target.netloc or target.query or target.fragment:
                continue
            child = target.path
            if not child.startswith(base) or child == base or ".." in unquote(child).split("/"):
                continue
            rest = child[len(base) :]
            if "/" in rest.rstrip("/") or child in seen:
                continue
            seen.add(child)
            entries.append(Entry(path=child, kind="dir" if child.endswith("/") else "file"))
        return entries

    def read(self, path: str, offset: int, length: int) -> tuple[bytes, int | None]:
        status, headers, body = self._request(
            path, {"Range": f"bytes={offset}-{offset + length - 1}"}, length
        )
        if status in (401, 403):
            raise ShareDenied("HTTP read refused")
        if status == 416:
            return b"", offset
        if status == 206:
            match = _CONTENT_RANGE.match(headers.get("content-range", ""))
            total = int(match.group(3)) if match and match.group(3) != "*" else None
            return body[:length], total
        if status == 200:
            # No Range support: the body starts at 0; we read at most ``length`` bytes of it.
            if offset:
                raise ShareError("HTTP server ignores Range")
            size = headers.get("content-length", "")
            return body[:length], int(size) if size.isdigit() else None
        raise ShareError(f"HTTP read answered {status}")


__all__ = ["HttpClient"]
