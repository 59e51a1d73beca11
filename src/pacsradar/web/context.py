"""Per-endpoint state shared by the web checks, which run in a fixed order (see auditor.py).

The facts the checks share (fingerprint, QIDO counts) are frozen dataclasses from
:mod:`pacsradar.web.facts`; the context holds them, it never imports the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pacsradar.config import ScanOptions
from pacsradar.errors import ScanError
from pacsradar.models import Endpoint
from pacsradar.net import Net
from pacsradar.phi import peer_text
from pacsradar.web.client import HttpReply, WebClient
from pacsradar.web.facts import FingerprintResult, QidoResult


@dataclass
class HostBudget:
    """Login attempts spent on one host across all its ports (never a brute force)."""

    attempts: int = 0
    locked_out: bool = False


@dataclass
class WebContext:
    endpoint: Endpoint
    options: ScanOptions
    net: Net
    client: WebClient
    login_budget: HostBudget
    #: GET replies by path, kept in memory for this endpoint only (bodies are never reported)
    _cache: dict[str, HttpReply | ScanError] = field(default_factory=dict)
    fingerprint: FingerprintResult | None = None
    qido: QidoResult | None = None
    #: a login found by the credentials check, used for authenticated follow-ups; memory only
    credential: tuple[str, str] | None = None
    #: set by checks that proved patient data is reachable without credentials
    phi_exposed: bool = False
    #: set when any reply asked for authentication (401/407 or a login form)
    auth_seen: bool = False

    @property
    def scheme(self) -> str:
        return self.client.scheme

    @property
    def product(self) -> str | None:
        return self.fingerprint.product if self.fingerprint else None

    @property
    def product_label(self) -> str | None:
        fp = self.fingerprint
        if fp is None or fp.product is None:
            return None
        if fp.version:
            return peer_text(f"{fp.product} {fp.version}")
        return fp.product

    def is_product(self, name: str) -> bool:
        return bool(self.product and self.product.lower().startswith(name.lower()))

    async def get(
        self,
        path: str,
        *,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        truncate_ok: bool = True,
        max_body: int | None = None,
    ) -> HttpReply:
        """GET with a per-endpoint cache of unauthenticated plain GETs (errors cached too)."""
        cacheable = auth is None and headers is None
        if cacheable and path in self._cache:
            cached = self._cache[path]
            if isinstance(cached, ScanError):
                raise cached
            return cached
        try:
            reply = await self.client.request(
                "GET", path, auth=auth, headers=headers, truncate_ok=truncate_ok,
                max_body=max_body,
            )  # fmt: skip
        except ScanError as exc:
            if cacheable:
                self._cache[path] = exc
            raise
        if cacheable:
            self._cache[path] = reply
        if reply.needs_auth:
            self.auth_seen = True
        return reply

    def cached(self, path: str) -> HttpReply | None:
        value = self._cache.get(path)
        return value if isinstance(value, HttpReply) else None

    def cached_replies(self) -> list[tuple[str, HttpReply]]:
        return [(k, v) for k, v in self._cache.items() if isinstance(v, HttpReply)]

    def prime(self, path: str, reply: HttpReply) -> None:
        self._cache[path] = reply
        if reply.needs_auth:
            self.auth_seen = True


__all__ = ["HostBudget", "WebContext"]
