"""Where alerts go: a signed webhook, email over SMTP, syslog (RFC 5424)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import httpx

from pacsradar import __version__
from pacsradar.alerts.model import Alert, AlertError, one_line
from pacsradar.models import Severity
from pacsradar.store.views import ChangeKind

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Pacsradar-Signature"
DELIVERY_HEADER = "X-Pacsradar-Delivery"
EVENT_HEADER = "X-Pacsradar-Event"


class AlertSink(Protocol):
    name: str

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` or raise :class:`AlertError`."""
        ...


def sign(secret: bytes, body: bytes) -> str:
    """The value of ``X-Pacsradar-Signature``: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """For receivers: constant-time check of the signature header against the raw body."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


class WebhookSink:
    """JSON POST of the :class:`Alert`, signed with HMAC-SHA256, retried with backoff.

    Retries on transport errors, 429 and 5xx (honouring a numeric ``Retry-After`` up to
    ``max_backoff``); any other non-2xx fails at once. Every try carries the same
    ``X-Pacsradar-Delivery`` id so a receiver can drop duplicates.
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: bytes | str | None,
        *,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise AlertError("the webhook URL must be http:// or https://")
        self.url = url
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._sleep = sleep
        self._transport = transport

    def __repr__(self) -> str:  # never show the secret
        return f"WebhookSink({self.url!r}, secret=<hidden>)"

    def send(self, alert: Alert) -> None:
        body = alert.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"pacsradar/{__version__}",
            DELIVERY_HEADER: str(uuid.uuid4()),
            EVENT_HEADER: alert.event,
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        last = "no attempt"
        with httpx.Client(
            timeout=self.timeout, follow_redirects=False, transport=self._transport, trust_env=False
        ) as client:
            for attempt in range(self.retries + 1):
                delay = min(self.backoff * (2**attempt), self.max_backoff)
                try:
                    response = client.post(self.url, content=body, headers=headers)
                except httpx.TransportError as exc:
                    last = f"transport error ({type(exc).__name__})"
                else:
                    if 200 <= response.status_code < 300:
                        return
                    last = f"HTTP {response.status_code}"
                    if response.status_code != 429 and response.status_code < 500:
                        raise AlertError(f"webhook refused the alert ({last})")
                    retry_after = response.headers.get("retry-after", "")
                    if retry_after.isdigit():
                        delay = min(float(retry_after), self.max_backoff)
                if attempt < self.retries:
                    log.info("webhook delivery failed (%s); retrying in %.1fs", last, delay)
                    self._sleep(delay)
        raise AlertError(f"webhook delivery failed after {self.retries + 1} tries ({last})")


class EmailSink:
    """Plain-text email through an SMTP relay (STARTTLS or implicit TLS optional)."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        recipients: Sequence[str],
        starttls: bool = False,
        use_ssl: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not recipients:
            raise AlertError("email alerts need at least one recipient")
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = tuple(recipients)
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.username = username
        self._password = password
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmailSink({self.host!r}, {self.port}, recipients={len(self.recipients)})"

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = one_line(alert.subject, 200)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="pacsradar.invalid")
        msg["X-Pacsradar-Scan"] = one_line(alert.scan_id, 128)
        msg.set_content(alert.text())
        return msg

    def send(self, alert: Alert) -> None:
        msg = self.message(alert)
        try:
            smtp: smtplib.SMTP
            if self.use_ssl:
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.starttls and not self.use_ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self._password or "")
                refused = smtp.send_message(msg, self.sender, list(self.recipients))
        except (OSError, smtplib.SMTPException) as exc:
            raise AlertError(f"email delivery failed ({type(exc).__name__})") from exc
        if refused:
            raise AlertError(f"{len(refused)} recipient(s) refused the alert")


# RFC 5424 §6.2.1 severities.
_SYSLOG_SEVERITY = {
    Severity.CRITICAL: 2,
    Severity.HIGH: 3,
    Severity.MEDIUM: 4,
    Severity.LOW: 5,
    Severity.INFO: 6,
}
FACILITIES = {
    "user": 1,
    "daemon": 3,
    "auth": 4,
    "local0": 16,
    "local1": 17,
    "local2": 18,
    "local3": 19,
    "local4": 20,
    "local5": 21,
    "local6": 22,
    "local7": 23,
}


def _sd_escape(value: str) -> str:
    # RFC 5424 §6.3.3: escape '"', '\' and ']' inside PARAM-VALUE.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


class SyslogSink:
    """One RFC 5424 message per change, to ``/dev/log``, or ``host:port`` over UDP or TCP.

    Over TCP, messages use octet-counting framing (RFC 6587 §3.4.1).
    """

    name = "syslog"

    def __init__(
        self,
        address: str | tuple[str, int] = "/dev/log",
        *,
        facility: str = "local0",
        protocol: str = "udp",
        hostname: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if facility not in FACILITIES:
            raise AlertError(f"unknown syslog facility; use one of {', '.join(FACILITIES)}")
        if protocol not in ("udp", "tcp"):
            raise AlertError("syslog protocol must be udp or tcp")
        self.address = address
        self.facility = FACILITIES[facility]
        self.protocol = protocol
        self.hostname = one_line(hostname or socket.gethostname(), 255).replace(" ", "-") or "-"
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SyslogSink({self.address!r}, protocol={self.protocol!r})"

    def messages(self, alert: Alert) -> list[bytes]:
        out: list[bytes] = []
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        head = f"{stamp} {self.hostname} pacsradar {os.getpid()}"
        for item in alert.items:
            sev = 6 if item.kind is ChangeKind.RESOLVED else _SYSLOG_SEVERITY[item.severity]
            sd = (
                f'[pacsradar@32473 kind="{item.kind.value}" check="{_sd_escape(item.check_id)}"'
                f' severity="{item.severity.value}" endpoint="{_sd_escape(item.endpoint)}"'
                f' scan="{_sd_escape(alert.scan_id)}" key="{item.dedupe_key}"]'
            )
            text = one_line(
                f"{item.kind.value} {item.severity.value} finding {item.check_id} on "
                f"{item.endpoint}: {item.title}"
            )
            line = f"<{self.facility * 8 + sev}>1 {head} finding {sd} {text}"
            out.append(line.encode("utf-8", "replace"))
        return out

    def send(self, alert: Alert) -> None:
        messages = self.messages(alert)
        try:
            if isinstance(self.address, str):
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    sock.settimeout(self.timeout)
                    sock.connect(self.address)
                    for m in messages:
                        sock.send(m)
            elif self.protocol == "udp":
                with socket.socket(_family(self.address[0]), socket.SOCK_DGRAM) as sock:
                    sock.settimeout(self.timeout)
                    for m in messages:
                        sock.sendto(m, self.address)
            else:
                with socket.create_connection(self.address, timeout=self.timeout) as sock:
                    sock.sendall(b"".join(str(len(m)).encode() + b" " + m for m in messages))
        except OSError as exc:
            raise AlertError(f"syslog delivery failed ({type(exc).__name__})") from exc


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@dataclass(frozen=True)
class Delivery:
    sink: str
    ok: bool
    error: str | None = None


def dispatch(alert: Alert, sinks: Sequence[AlertSink]) -> list[Delivery]:
    """Send to every sink; one failing sink does not stop the others."""
    results: list[Delivery] = []
    for sink in sinks:
        try:
            sink.send(alert)
        except AlertError as exc:
            log.warning("%s alert not delivered: %s", sink.name, exc)
            results.append(Delivery(sink=sink.name, ok=False, error=str(exc)))
        else:
            results.append(Delivery(sink=sink.name, ok=True))
    return results


__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "FACILITIES",
    "SIGNATURE_HEADER",
    "AlertSink",
    "Delivery",
    "EmailSink",
    "SyslogSink",
    "WebhookSink",
    "dispatch",
    "sign",
    "verify",
]
