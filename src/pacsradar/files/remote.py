"""Share audits as :class:`TargetResult` objects: FTP, SMB and HTTP directory listings.

Each ``audit_*`` function is synchronous and bounded (socket timeouts, a watchdog for SMB, the
options' depth/file/byte limits); the engine's auditor runs them in a worker thread.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from pacsradar.errors import TargetError
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.shares.base import ShareDenied, ShareError, walk_share
from pacsradar.files.shares.ftp import FtpClient
from pacsradar.files.shares.http import HttpClient
from pacsradar.files.specs import share_findings
from pacsradar.files.tally import Tally
from pacsradar.models import Attempt, AttemptStatus, Endpoint, Evidence, TargetResult
from pacsradar.phi import peer_text

DEFAULT_PORTS = {"ftp": 21, "smb": 445, "http": 80, "https": 443}


def _result(
    endpoint: Endpoint,
    check: str,
    started: datetime,
    t0: float,
    *,
    reachable: bool = True,
    status: AttemptStatus = AttemptStatus.COMPLETED,
    reason: str | None = None,
    details: Evidence | None = None,
    tally: Tally | None = None,
    access: Evidence | None = None,
    product: str | None = None,
    service: str | None = None,
) -> TargetResult:
    elapsed = (time.monotonic() - t0) * 1000
    merged: Evidence = dict(details or {})
    if tally is not None:
        merged.update(tally.walk_details())
    findings = (
        share_findings(endpoint, tally, access, product=product)
        if tally is not None and access is not None
        else ()
    )
    return TargetResult(
        endpoint=endpoint,
        reachable=reachable,
        service=service or endpoint.protocol,
        product=product or None,
        attempts=(Attempt(check=check, status=status, reason=reason, duration_ms=elapsed, details=merged),),
        findings=findings,
        error=reason if not reachable else None,
        started_at=started,
        duration_ms=elapsed,
    )


def audit_ftp(host: str, port: int, options: FileAuditOptions, root: str = "/") -> TargetResult:
    started, t0 = datetime.now(UTC), time.monotonic()
    endpoint = Endpoint(host=host, port=port, protocol="ftp")
    client = FtpClient(host, port, timeout=options.timeout)
    try:
        anonymous = client.connect()
    except ShareError as exc:
        return _result(
            endpoint, "share.ftp", started, t0, reachable=False, status=AttemptStatus.ERROR, reason=str(exc)
        )
    product = _ftp_product(client.banner)
    try:
        if not anonymous:
            return _result(endpoint, "share.ftp", started, t0, details={"anonymous": False}, product=product)
        tally = walk_share(client, [root], options)
    finally:
        client.close()
    access: Evidence = {"anonymous": True, "session": "anonymous", "files_listed": tally.files_seen}
    return _result(
        endpoint,
        "share.ftp",
        started,
        t0,
        details={"anonymous": True},
        tally=tally,
        access=access,
        product=product,
    )


def _ftp_product(banner: str) -> str | None:
    text = peer_text(banner, 64)
    for known in ("vsFTPd", "ProFTPD", "Pure-FTPd", "FileZilla", "Microsoft FTP"):
        if known.lower() in text.lower():
            return "vsftpd" if known == "vsFTPd" else known
    return None


def audit_smb(
    host: str, port: int, options: FileAuditOptions, shares: list[str] | None = None
) -> TargetResult:
    started, t0 = datetime.now(UTC), time.monotonic()
    endpoint = Endpoint(host=host, port=port, protocol="smb")
    try:
        from pacsradar.files.shares.smb import SmbClient
    except ImportError:
        return _result(
            endpoint,
            "share.smb",
            started,
            t0,
            status=AttemptStatus.SKIPPED,
            reason="smbprotocol is not installed (pip install 'pacsradar[shares]')",
        )
    client = SmbClient(host, port, timeout=options.timeout)
    # smbprotocol waits for replies without a bound of its own: a watchdog drops the connection.
    watchdog = threading.Timer(max(options.timeout * 30, 60.0), client.abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        try:
            opened = client.connect()
        except ShareError as exc:
            return _result(
                endpoint,
                "share.smb",
                started,
                t0,
                reachable=False,
                status=AttemptStatus.ERROR,
                reason=str(exc),
            )
        if not opened:
            return _result(
                endpoint, "share.smb", started, t0, details={"guest": False, "null_session": False}
            )
        details: Evidence = {"session": client.session_kind}
        enumerated = True
        if not shares:
            try:
                shares = client.list_shares()
            except ShareDenied:
                enumerated = False
                shares = []
            except ShareError:
                enumerated = False
                shares = []
        details["shares_enumerated"] = enumerated
        readable: list[str] = []
        tally = Tally(show_paths=options.show_paths)
        for share in shares:
            try:
                client.listdir(share)
            except ShareError:
                continue
            readable.append(share)
        if readable:
            tally = walk_share(client, readable, options)
        details["shares"] = len(shares)
        details["shares_readable"] = len(readable)
        if options.show_paths:
            details["share_names"] = [peer_text(s, 80) for s in readable]
        product = "samba" if "samba" in client.product.lower() else None
        if not readable:
            return _result(endpoint, "share.smb", started, t0, details=details, product=product)
        access: Evidence = {
            "session": client.session_kind,
            "shares_readable": len(readable),
            "files_listed": tally.files_seen,
        }
        return _result(
            endpoint, "share.smb", started, t0, details=details, tally=tally, access=access, product=product
        )
    finally:
        watchdog.cancel()
        client.close()


def audit_http(
    host: str,
    port: int,
    options: FileAuditOptions,
    path: str = "/",
    *,
    tls: bool = False,
    deadline: float | None = None,
) -> TargetResult:
    """``deadline`` (``time.monotonic()``) bounds the whole walk in wall-clock time."""
    started, t0 = datetime.now(UTC), time.monotonic()
    endpoint = Endpoint(host=host, port=port, protocol="https" if tls else "http")
    client = HttpClient(host, port, tls=tls, timeout=options.timeout, deadline=deadline)
    base = path if path.endswith("/") else path + "/"
    try:
        listing = client.is_listing(base)
    except ShareError as exc:
        return _result(
            endpoint, "share.http", started, t0, reachable=False, status=AttemptStatus.ERROR, reason=str(exc)
        )
    product = "nginx" if "nginx" in client.server.lower() else None
    if not listing:
        return _result(
            endpoint, "share.http", started, t0, details={"listing": False}, product=product, service="http"
        )
    tally = walk_share(client, [base], options)
    access: Evidence = {"listing": True, "files_listed": tally.files_seen}
    return _result(
        endpoint,
        "share.http",
        started,
        t0,
        details={"listing": True},
        tally=tally,
        access=access,
        product=product,
        service="http",
    )


def audit_url(url: str, options: FileAuditOptions) -> TargetResult:
    """``ftp://host[:port]/path``, ``smb://host[:port][/share]``, ``http(s)://host[:port]/path``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise TargetError("expected ftp://, smb://, http:// or https:// with a host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise TargetError("invalid port") from exc
    host = parts.hostname
    if scheme == "ftp":
        return audit_ftp(host, port, options, unquote(parts.path) or "/")
    if scheme == "smb":
        share = unquote(parts.path).strip("/").replace("/", "\\")
        return audit_smb(host, port, options, [share] if share else None)
    return audit_http(host, port, options, parts.path or "/", tls=scheme == "https")


__all__ = ["DEFAULT_PORTS", "audit_ftp", "audit_http", "audit_smb", "audit_url"]
