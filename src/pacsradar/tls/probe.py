"""TLS handshake probes with the stdlib ``ssl`` module (OpenSSL does the handshakes).

Each probe is one connection through :class:`pacsradar.net.Net` with a purpose-built client
context (a version pinned, or only weak cipher suites offered). OpenSSL's message callback
(``SSLContext._msg_callback``) shows which handshake messages came back, so that a server which
demands a client certificate (PS3.15 Annex B: DICOM TLS authenticates both ends) still tells us
the version and cipher it chose, and its certificate, before it aborts the handshake.

When our own OpenSSL refuses to offer something (Debian builds may refuse TLS 1.0/1.1 or the
legacy ciphers client-side), the probe says "could not test", never "not accepted".
"""

from __future__ import annotations

import asyncio
import ssl
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from pacsradar.errors import ConnectError, TlsHandshakeError
from pacsradar.net import Net

# TLS handshake message types (RFC 8446 §4 / RFC 5246 §7.4)
_CLIENT_HELLO = 1
_SERVER_HELLO = 2
_CERTIFICATE = 11
_CERTIFICATE_REQUEST = 13
_HANDSHAKE = 22

_VERSION_NAMES = {0x0300: "SSLv3", 0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2",
                  0x0304: "TLSv1.3"}  # fmt: skip

#: Offered by the weak-cipher probe: no encryption, export grade, anonymous, RC4, DES, 3DES.
WEAK_CIPHERS = "NULL:eNULL:aNULL:EXP:LOW:RC4:DES:3DES:MD5:@SECLEVEL=0"
ALL_CIPHERS = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
#: Least time given to a TLS 1.3 server to reject our empty client certificate with an alert,
#: however fast its handshake was (a busy server's alert can trail its Finished).
ALERT_WAIT_FLOOR = 0.25


class LocalRefusal(Exception):
    """Our OpenSSL cannot offer what the probe needs."""


@dataclass
class _Trace:
    client_hello_sent: bool = False
    server_hello: bool = False
    version: int | None = None
    cipher_id: int | None = None
    cert_requested: bool = False
    cert_der: bytes | None = None

    def callback(
        self, conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any,
        data: bytes,
    ) -> None:  # fmt: skip
        try:
            if int(content_type) != _HANDSHAKE:
                return
            kind = int(msg_type)
        except (TypeError, ValueError):
            return
        if direction == "write" and kind == _CLIENT_HELLO:
            self.client_hello_sent = True
        elif direction == "read" and kind == _SERVER_HELLO:
            self.server_hello = True
            self.version, self.cipher_id = _parse_server_hello(data)
        elif direction == "read" and kind == _CERTIFICATE_REQUEST:
            self.cert_requested = True
        elif direction == "read" and kind == _CERTIFICATE and self.cert_der is None:
            self.cert_der = _first_certificate(data)


_SUPPORTED_VERSIONS = 0x002B  # RFC 8446 §4.2.1


def _parse_server_hello(data: bytes) -> tuple[int | None, int | None]:
    """(version, cipher suite) from a ServerHello, bounds-checked (RFC 5246 §7.4.1.3,
    RFC 8446 §4.1.3): type(1) len(3) legacy_version(2) random(32) session_id<0..32>
    cipher_suite(2) compression(1) extensions<0..2^16-1>; TLS 1.3 puts its real version in
    the supported_versions extension."""
    if len(data) < 39:
        return None, None
    version = int.from_bytes(data[4:6], "big")
    at = 39 + data[38]
    if len(data) < at + 2:
        return version, None
    cipher = int.from_bytes(data[at : at + 2], "big")
    at += 3  # suite + compression method
    if len(data) >= at + 2:
        end = min(len(data), at + 2 + int.from_bytes(data[at : at + 2], "big"))
        at += 2
        while at + 4 <= end:
            kind = int.from_bytes(data[at : at + 2], "big")
            size = int.from_bytes(data[at + 2 : at + 4], "big")
            if kind == _SUPPORTED_VERSIONS and size == 2 and at + 6 <= end:
                version = int.from_bytes(data[at + 4 : at + 6], "big")
            at += 4 + size
    return version, cipher


def _first_certificate(data: bytes) -> bytes | None:
    """The leaf certificate's DER from a Certificate message, bounds-checked: the TLS 1.2
    layout (RFC 5246 §7.4.2) first, else TLS 1.3's (RFC 8446 §4.4.2, request context first)."""
    for at in (4, 5 + (data[4] if len(data) > 4 else 0)):
        if len(data) < at + 6:
            continue
        length = int.from_bytes(data[at + 3 : at + 6], "big")
        start = at + 6
        if 0 < length <= len(data) - start and data[start : start + 1] == b"\x30":
            return bytes(data[start : start + length])
    return None


@dataclass(frozen=True)
class Handshake:
    """One probe's outcome; strings are OpenSSL's or ours, never the peer's."""

    completed: bool
    server_hello: bool
    version: str | None
    cipher: str | None
    cipher_bits: int | None
    cert_requested: bool
    client_cert_required: bool | None
    could_not_test: bool = False
    failure: str | None = None
    cert_der: bytes | None = field(default=None, repr=False)


def make_context(
    *, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion, ciphers: str, trace: _Trace
) -> ssl.SSLContext:
    # TLS 1.0/1.1 members of TLSVersion emit DeprecationWarning: testing them is the point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            ctx.minimum_version = minimum
            ctx.maximum_version = maximum
            ctx.set_ciphers(ciphers)
        except (ValueError, ssl.SSLError) as exc:
            raise LocalRefusal("local OpenSSL cannot offer this") from exc
    ctx._msg_callback = trace.callback  # type: ignore[attr-defined]
    return ctx


def _cipher_info(ctx: ssl.SSLContext, cipher_id: int | None) -> tuple[str | None, int | None]:
    if cipher_id is None:
        return None, None
    for entry in ctx.get_ciphers():
        if int(entry.get("id", -1)) & 0xFFFF == cipher_id:
            bits = entry.get("alg_bits")
            return str(entry.get("name")), int(bits) if isinstance(bits, int) else None
    return f"0x{cipher_id:04X}", None


async def handshake(
    net: Net,
    host: str,
    port: int,
    *,
    minimum: ssl.TLSVersion,
    maximum: ssl.TLSVersion,
    ciphers: str = ALL_CIPHERS,
    server_name: str | None = None,
    alert_wait: float = 1.0,
) -> Handshake:
    """One TLS handshake; raises ConnectError only when TCP itself fails."""
    trace = _Trace()
    try:
        ctx = make_context(minimum=minimum, maximum=maximum, ciphers=ciphers, trace=trace)
    except LocalRefusal:
        return Handshake(False, False, None, None, None, False, None, could_not_test=True,
                         failure="local OpenSSL refuses to offer this")  # fmt: skip
    limits = net.limits
    async with net.connect(host, port) as stream:
        failure: str | None = None
        completed = False
        required: bool | None = None
        started = time.monotonic()
        try:
            await stream.start_tls(ctx, server_hostname=server_name, within=limits.connect_timeout)
            completed = True
        except TlsHandshakeError as exc:
            cause = exc.__cause__
            if exc.timed_out:
                failure = "handshake timed out"
            elif isinstance(cause, ssl.SSLError):
                failure = f"handshake failed ({cause.reason or 'unknown'})"
            else:
                failure = "connection lost during the handshake"
        if not trace.client_hello_sent:
            return Handshake(False, False, None, None, None, False, None, could_not_test=True,
                             failure="local OpenSSL did not send a ClientHello")  # fmt: skip
        ssl_object = stream.writer.get_extra_info("ssl_object") if completed else None
        if trace.cert_requested:
            if not completed:
                required = True
            else:
                # TLS 1.3: the server judges our (empty) certificate after its Finished and
                # answers with an alert (RFC 8446 §4.4.2.4); give it a moment to do so. The
                # alert is one round trip behind the handshake, so the moment scales with the
                # handshake's own time (a WAN peer gets longer), up to ``alert_wait``.
                took = time.monotonic() - started
                wait = min(alert_wait, max(ALERT_WAIT_FLOOR, 4 * took))
                required = await _alert_follows(stream.reader, wait)
        elif completed:
            required = False
        # No graceful TLS shutdown: a single-threaded peer (storescp) would wait on it.
        stream.writer.transport.abort()
    version = _VERSION_NAMES.get(trace.version or 0)
    cipher, bits = _cipher_info(ctx, trace.cipher_id)
    if ssl_object is not None:
        negotiated_version = ssl_object.version()
        if negotiated_version:
            version = "TLSv1.0" if negotiated_version == "TLSv1" else negotiated_version
        negotiated = ssl_object.cipher()
        if negotiated:
            cipher, bits = negotiated[0], negotiated[2]
    return Handshake(
        completed=completed,
        server_hello=trace.server_hello,
        version=version if trace.server_hello else None,
        cipher=cipher if trace.server_hello else None,
        cipher_bits=bits if trace.server_hello else None,
        cert_requested=trace.cert_requested,
        client_cert_required=required,
        failure=failure,
        cert_der=trace.cert_der,
    )


async def _alert_follows(reader: asyncio.StreamReader, wait: float) -> bool:
    try:
        async with asyncio.timeout(wait):
            data = await reader.read(1)
    except TimeoutError:
        return False
    except ssl.SSLError:
        return True
    except (OSError, ConnectionError):
        return True
    return data == b""


__all__ = ["ALL_CIPHERS", "WEAK_CIPHERS", "ConnectError", "Handshake", "handshake"]
