"""A bounded HTTP client for scanning hostile web peers.

Every request is bounded four ways (HACKING.md rule 5):

* time: httpx connect/read timeouts from :class:`~pacsradar.config.Limits`, plus a total budget
  per request and the web audit's own deadline, which sits inside the engine's per-target one;
* headers: httpcore's h11 parser refuses a header block past ``MAX_INCOMPLETE_EVENT_SIZE``
  (100 KiB), so megabyte headers end as a protocol error, not as memory;
* body: read with ``aiter_raw`` and decoded here with ``max_length`` so that the *decoded*
  size is counted (a gzip bomb stops at ``limits.max_body_bytes``);
* redirects: followed by hand, same origin only, at most :data:`MAX_REDIRECTS` hops, and the
  body of a redirect is never read (httpx would read it in full when it follows them itself).

Connections go through :class:`pacsradar.net.Net`, so the scan's rate and per-host limits apply
to web probes exactly as to DICOM ones. Keep-alive is off: each request holds at most one
per-host slot and never waits for a second one while holding the first.

Exception messages are our own words only: httpx/h11 messages can quote peer bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from pacsradar.config import Limits
from pacsradar.errors import (
    ConnectError,
    ConnectTimeout,
    DeadlineExceeded,
    PeerClosed,
    ProtocolError,
    ReadTimeout,
    ScanError,
    SizeLimitError,
    TlsHandshakeError,
)
from pacsradar.net import Net, insecure_tls_context
from pacsradar.web.decode import _decoder_for, _Identity
from pacsradar.web.transport import NetBackend, quiet_transport_loggers

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
#: Sent on every request so that a sane server does not compress (a hostile one may anyway).
ACCEPT_ENCODING = "identity"
USER_AGENT = "pacsradar (authorised security audit; read-only)"
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class NotHttpError(ProtocolError):
    """The peer answered, but not with HTTP."""


# --------------------------------------------------------------------------------------------
# the reply and the client


@dataclass(frozen=True)
class HttpReply:
    """One HTTP answer. ``body`` lives in memory only, to be parsed for counts and dropped."""

    status: int
    headers: httpx.Headers
    body: bytes
    scheme: str
    path: str
    truncated: bool = False
    redirects: int = 0
    #: a redirect we did not follow (other origin): its target scheme only, e.g. "https"
    offsite_redirect_scheme: str | None = None
    cookies_set: bool = False

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    @property
    def content_type(self) -> str:
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """Parse the body as JSON; errors carry no peer bytes."""
        if self.truncated:
            raise ProtocolError("JSON body was truncated at the size bound")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ProtocolError("body is not valid JSON") from exc

    def text(self, limit: int = 256 * 1024) -> str:
        return self.body[:limit].decode("utf-8", "replace")

    @property
    def needs_auth(self) -> bool:
        return self.status in (401, 407) or (self.status == 403 and "www-authenticate" in self.headers)


@dataclass
class RequestLog:
    """What the client did, for attempt details: counts only."""

    requests: int = 0
    bytes_read: int = 0
    errors: list[str] = field(default_factory=list)
    #: the reasons ("Type: message") of requests that got no HTTP answer at all: no reply
    #: before the timeout, or the connection closed without one (see web.auditor)
    unanswered: set[str] = field(default_factory=set)


class WebClient:
    """One per target (no module-level client). Use as an async context manager."""

    def __init__(
        self,
        host: str,
        port: int,
        scheme: str,
        *,
        net: Net,
        limits: Limits,
        deadline: float,
    ) -> None:
        quiet_transport_loggers()
        self.host = host
        self.port = port
        self.scheme = scheme
        self.limits = limits
        self.deadline = deadline
        self.log = RequestLog()
        authority = f"[{host}]" if ":" in host else host
        self.origin = f"{scheme}://{authority}:{port}"
        tls = insecure_tls_context()  # discovery: certificates are reported, not trusted
        transport = httpx.AsyncHTTPTransport(
            verify=tls,
            http1=True,
            http2=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
            retries=0,
            trust_env=False,
        )
        # httpx has no public hook for a network backend; swap in a pool that uses ours so the
        # scan's rate and per-host limits cover web traffic too (tests assert it is used).
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=1,
            max_keepalive_connections=0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=NetBackend(net),
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            base_url=self.origin,
            timeout=httpx.Timeout(
                connect=limits.connect_timeout,
                read=limits.read_timeout,
                write=limits.read_timeout,
                pool=limits.connect_timeout + limits.read_timeout,
            ),
            follow_redirects=False,
            trust_env=False,
            headers={
                "User-Agent": USER_AGENT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
        )

    async def __aenter__(self) -> WebClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.aclose()

    def clear_cookies(self) -> None:
        self._client.cookies.clear()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _request_budget(self) -> float:
        cap = self.limits.connect_timeout + 2 * self.limits.read_timeout
        left = self.remaining()
        if left <= 0.05:
            raise DeadlineExceeded("web audit time budget exhausted")
        return min(cap, left)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        follow: bool = True,
        max_body: int | None = None,
        truncate_ok: bool = False,
        read_body: bool = True,
    ) -> HttpReply:
        """Send one request (plus same-origin redirects) under every bound; raise ScanError."""
        budget = self._request_budget()
        try:
            async with asyncio.timeout(budget):
                return await self._request(
                    method, path, headers=headers, content=content, data=data, auth=auth,
                    follow=follow, max_body=max_body, truncate_ok=truncate_ok,
                    read_body=read_body,
                )  # fmt: skip
        except TimeoutError as exc:
            self.log.errors.append("timeout")
            timeout = ReadTimeout(f"request did not complete within {budget:.1f}s")
            self.log.unanswered.add(f"ReadTimeout: {timeout}")
            raise timeout from exc
        except ScanError as exc:
            self.log.errors.append(type(exc).__name__)
            if isinstance(exc, ReadTimeout | NotHttpError | PeerClosed):
                self.log.unanswered.add(f"{type(exc).__name__}: {exc}")
            raise

    async def _request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        data: Mapping[str, str] | None,
        auth: tuple[str, str] | None,
        follow: bool,
        max_body: int | None,
        truncate_ok: bool,
        read_body: bool,
    ) -> HttpReply:
        limit = min(max_body or self.limits.max_body_bytes, self.limits.max_body_bytes)
        url = httpx.URL(self.origin).join(path)
        hops = 0
        cookies_set = False
        while True:
            request = self._client.build_request(method, url, headers=headers, content=content, data=data)
            if auth is not None:
                request.headers["Authorization"] = basic_auth_header(*auth)
            self.log.requests += 1
            response = await self._send(request)
            try:
                cookies_set = cookies_set or "set-cookie" in response.headers
                location = response.headers.get("location")
                if follow and response.status_code in _REDIRECT_CODES and location:
                    try:
                        target = url.join(location)
                    except (httpx.InvalidURL, ValueError) as exc:
                        raise ProtocolError("redirect to an unparsable location") from exc
                    if (target.scheme, target.host, target.port or _default_port(target)) != (
                        url.scheme, url.host, url.port or _default_port(url),
                    ):  # fmt: skip
                        # Never leave the audited origin: other hosts are out of scope, and
                        # other ports of this host are endpoints of their own.
                        return self._reply(
                            response, b"", url, hops, False, cookies_set,
                            offsite=target.scheme or "unknown",
                        )  # fmt: skip
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        raise ProtocolError(f"more than {MAX_REDIRECTS} redirects")
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method, content, data = "GET", None, None
                    url = target
                    continue
                body, truncated = b"", False
                if read_body:
                    body, truncated = await self._read_body(response, limit, truncate_ok)
                return self._reply(response, body, url, hops, truncated, cookies_set)
            finally:
                with contextlib.suppress(Exception):
                    await response.aclose()

    def _reply(
        self,
        response: httpx.Response,
        body: bytes,
        url: httpx.URL,
        hops: int,
        truncated: bool,
        cookies_set: bool,
        offsite: str | None = None,
    ) -> HttpReply:
        return HttpReply(
            status=response.status_code,
            headers=response.headers,
            body=body,
            scheme=url.scheme,
            path=url.path,
            truncated=truncated,
            redirects=hops,
            offsite_redirect_scheme=offsite,
            cookies_set=cookies_set,
        )

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._client.send(request, stream=True, follow_redirects=False)
        except TlsHandshakeError:
            raise  # typed by Stream.start_tls, under httpx
        except httpx.ConnectTimeout as exc:
            raise ConnectTimeout("connect did not complete in time") from exc
        except httpx.ConnectError as exc:
            raise ConnectError("connection refused or unreachable") from exc
        except httpx.TimeoutException as exc:
            raise ReadTimeout("no complete HTTP response head in time") from exc
        except httpx.RemoteProtocolError as exc:
            raise NotHttpError(_protocol_reason(exc)) from exc
        except (httpx.ReadError, httpx.WriteError) as exc:
            raise PeerClosed("connection lost during the HTTP exchange") from exc
        except httpx.HTTPError as exc:
            raise ProtocolError(f"HTTP exchange failed ({type(exc).__name__})") from exc
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
            raise ConnectError("connect failed") from exc

    async def _read_body(self, response: httpx.Response, limit: int, truncate_ok: bool) -> tuple[bytes, bool]:
        encoding = response.headers.get("content-encoding", "")
        decoder = _decoder_for(encoding)
        identity = isinstance(decoder, _Identity)
        declared = response.headers.get("content-length")
        if declared is not None and declared.strip().isdigit():
            announced = int(declared.strip())
            if announced > limit and not (truncate_ok and identity):
                raise SizeLimitError(f"peer announced a {announced}-byte body; the bound is {limit} bytes")
        out = bytearray()
        raw_total = 0
        try:
            async for chunk in response.aiter_raw():
                raw_total += len(chunk)
                self.log.bytes_read += len(chunk)
                if raw_total > limit and not (truncate_ok and identity):
                    raise SizeLimitError(f"body exceeds the {limit}-byte bound")
                piece = decoder.feed(chunk, limit - len(out) + 1)
                out += piece
                if len(out) > limit:
                    if truncate_ok and identity:
                        del out[limit:]
                        return bytes(out), True
                    raise SizeLimitError(f"decoded body exceeds the {limit}-byte bound")
            out += decoder.finish(limit - len(out) + 1)
        except httpx.TimeoutException as exc:
            raise ReadTimeout("HTTP body did not arrive in time") from exc
        except httpx.RemoteProtocolError as exc:
            raise ProtocolError("HTTP body ended early or was malformed") from exc
        except (httpx.ReadError, httpx.WriteError) as exc:
            raise PeerClosed("connection lost while reading the HTTP body") from exc
        except httpx.HTTPError as exc:
            raise ProtocolError(f"HTTP body read failed ({type(exc).__name__})") from exc
        if len(out) > limit:
            raise SizeLimitError(f"decoded body exceeds the {limit}-byte bound")
        return bytes(out), False


def basic_auth_header(username: str, password: str) -> str:
    """RFC 7617 credentials (UTF-8, as browsers send them)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _protocol_reason(exc: httpx.RemoteProtocolError) -> str:
    """Classify an h11 error without quoting it (h11 messages embed peer bytes)."""
    message = str(exc).lower()
    if "buffer" in message and ("long" in message or "size" in message):
        return "HTTP response head exceeds the header size bound"
    if "status line" in message or "illegal" in message or "malformed" in message:
        return "the peer's reply is not an HTTP status line (not an HTTP service)"
    if "disconnect" in message or "closed" in message:
        return "the peer closed the connection without an HTTP response"
    return "the peer's reply violates HTTP/1.1"


__all__ = [
    "MAX_REDIRECTS",
    "HttpReply",
    "NetBackend",
    "NotHttpError",
    "TlsHandshakeError",
    "WebClient",
    "basic_auth_header",
    "quiet_transport_loggers",
]
