"""The web auditor: discovery (HTTP or HTTPS), then every web check in a fixed order.

It implements :class:`pacsradar.engine.Auditor`. One :class:`WebClient` per target, created and
closed here; everything runs under the web audit's own time budget, which is what is left of
the engine's per-target deadline after earlier auditors, minus a margin so that partial results
come back as error attempts instead of being dropped by the engine's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pacsradar.checks import Check, internal_error, log_internal
from pacsradar.config import TLS_FIRST_PORTS, ScanOptions
from pacsradar.engine import AuditContext
from pacsradar.errors import ConnectError, ConnectTimeout, ScanError, TlsHandshakeError
from pacsradar.models import Attempt, AttemptStatus, Endpoint, Finding, TargetResult

if TYPE_CHECKING:
    # The web stack (httpx, h11, ...) is imported on the first endpoint that needs it, not
    # with the auditor: a scan whose web ports are all closed never pays for it.
    from pacsradar.web.client import HttpReply, WebClient
    from pacsradar.web.context import HostBudget, WebContext

log = logging.getLogger(__name__)


_ROOT_BODY = 256 * 1024
_DICOM_SERVICES = frozenset({"dicom", "dicom-tls"})


class WebAuditor:
    """``name = "web"``. Holds per-host login budgets for the whole scan (memory only)."""

    name = "web"
    #: The engine's TCP gate connects first; our first connection takes over its socket.
    gate = True

    def __init__(self, checks: Sequence[Check[WebContext]] | None = None) -> None:
        self._checks = tuple(checks) if checks is not None else None
        self._budgets: dict[str, HostBudget] = {}

    @property
    def checks(self) -> tuple[Check[WebContext], ...]:
        if self._checks is None:
            from pacsradar.registry import web_checks

            self._checks = web_checks()
        return self._checks

    def wants(self, endpoint: Endpoint, prior: Sequence[TargetResult], options: ScanOptions) -> bool:
        if "web" not in options.only:
            return False
        if any(not p.reachable for p in prior):
            return False  # the DICOM auditor's TCP connect failed a moment ago: so would ours
        if any(p.service in ("http", "https") for p in prior):
            return True
        if any(p.service in _DICOM_SERVICES for p in prior):
            return False  # a DICOM port is not also a web port
        if endpoint.protocol in ("http", "https"):
            return True
        return options.tries(endpoint.port, options.web_ports)

    def _budget_for(self, host: str) -> HostBudget:
        from pacsradar.web.context import HostBudget

        return self._budgets.setdefault(host, HostBudget())

    async def audit(self, endpoint: Endpoint, ctx: AuditContext) -> TargetResult:
        start = time.monotonic()
        limits = ctx.options.limits
        spent = sum(p.duration_ms for p in ctx.prior) / 1000.0
        left = limits.target_deadline - spent
        margin = min(2.0, 0.1 * limits.target_deadline)
        deadline = start + max(0.5, left - margin)
        host, port = endpoint.host, endpoint.port

        from pacsradar.web.context import WebContext

        client, first, failure = await self._discover(endpoint, ctx, deadline)
        if client is None or first is None:
            elapsed = (time.monotonic() - start) * 1000
            if isinstance(failure, ConnectError) and not isinstance(failure, TlsHandshakeError):
                # Refused: nothing there. Timed out: filtered or down, so "could not test",
                # kept as an error attempt so that a stored finding is not marked resolved.
                timed_out = isinstance(failure, ConnectTimeout)
                return TargetResult(
                    endpoint=endpoint,
                    reachable=False,
                    error=str(failure),
                    duration_ms=elapsed,
                    attempts=(
                        Attempt(
                            check="web.discovery",
                            status=AttemptStatus.ERROR,
                            reason=f"ConnectTimeout: {failure}",
                            duration_ms=elapsed,
                        ),
                    )
                    if timed_out
                    else (),
                )
            reason = f"{type(failure).__name__}: {failure}" if failure else "no HTTP service"
            return TargetResult(
                endpoint=endpoint,
                reachable=True,
                attempts=(
                    Attempt(
                        check="web.discovery",
                        status=AttemptStatus.ERROR,
                        reason=reason,
                        duration_ms=elapsed,
                    ),
                ),
                error="no HTTP service could be spoken to",
                duration_ms=elapsed,
            )

        protocol: Literal["http", "https"] = "https" if client.scheme == "https" else "http"
        web_endpoint = Endpoint(host=host, port=port, protocol=protocol)
        wctx = WebContext(
            endpoint=web_endpoint,
            options=ctx.options,
            net=ctx.net,
            client=client,
            login_budget=self._budget_for(host),
        )
        wctx.prime("/", first)
        attempts: list[Attempt] = []
        findings: list[Finding] = []
        try:
            for check in self.checks:
                if check.intrusive and not ctx.options.intrusive:
                    continue  # opt-in only (HACKING.md: default checks read, never write)
                attempt, found = await _run_check(check, wctx, deadline)
                attempts.append(_settle_unanswered(attempt, client))
                findings.extend(found)
        finally:
            await client.aclose()
        product = wctx.product_label
        return TargetResult(
            endpoint=web_endpoint,
            reachable=True,
            service=client.scheme,
            product=product,
            attempts=tuple(attempts),
            findings=tuple(findings),
            duration_ms=(time.monotonic() - start) * 1000,
        )

    async def _discover(
        self, endpoint: Endpoint, ctx: AuditContext, deadline: float
    ) -> tuple[WebClient | None, HttpReply | None, ScanError | None]:
        """Find the scheme that speaks HTTP here. Returns the open client and the root reply."""
        from pacsradar.web.client import WebClient

        tls_first = endpoint.port in TLS_FIRST_PORTS or endpoint.protocol == "https"
        schemes = ("https", "http") if tls_first else ("http", "https")
        errors: list[ScanError] = []
        fallback: tuple[WebClient, HttpReply] | None = None
        for scheme in schemes:
            client = WebClient(
                endpoint.host, endpoint.port, scheme,
                net=ctx.net, limits=ctx.options.limits, deadline=deadline,
            )  # fmt: skip
            try:
                reply = await client.request("GET", "/", max_body=_ROOT_BODY, truncate_ok=True)
            except TlsHandshakeError as exc:
                await client.aclose()
                errors.append(exc)
                continue  # TCP connected: the other scheme may speak here
            except ConnectError as exc:
                await client.aclose()
                errors.append(exc)
                break  # TCP itself failed: the other scheme would too
            except ScanError as exc:
                await client.aclose()
                errors.append(exc)
                continue
            if scheme == "http" and reply.status == 400 and fallback is None and not tls_first:
                # e.g. nginx's "plain HTTP request was sent to HTTPS port": try TLS too.
                fallback = (client, reply)
                continue
            if fallback is not None:
                await fallback[0].aclose()
            return client, reply, None
        if fallback is not None:
            return fallback[0], fallback[1], None
        # Prefer the most telling error: not-HTTP or size/time bounds over a TLS mismatch.
        telling = [e for e in errors if not isinstance(e, TlsHandshakeError)] or errors
        return None, None, telling[0] if telling else None


def _settle_unanswered(attempt: Attempt, client: WebClient) -> Attempt:
    """A check that failed only because a request got no HTTP answer at all, from a server
    that answered ``/``, did not fail to test the service: that server does not serve the path.

    PixelMed's web server (DicomAndWebStorageServer) answers ``/`` and its request types and
    leaves every other path unanswered; such a check is then skipped, with the reason, so the
    port is not reported as 'could not test' (issue 22). The reason is matched against the
    client's own record of unanswered requests (our messages, never a peer's text); a check
    that failed any other way stays an error."""
    if attempt.status is not AttemptStatus.ERROR or attempt.reason not in client.log.unanswered:
        return attempt
    return attempt.model_copy(
        update={
            "status": AttemptStatus.SKIPPED,
            "reason": f"no HTTP answer to its request ({attempt.reason}); the server answers / "
            "but does not serve that path",
        }
    )


async def _run_check(
    check: Check[WebContext], wctx: WebContext, deadline: float
) -> tuple[Attempt, tuple[Finding, ...]]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Attempt(
            check=check.name, status=AttemptStatus.ERROR, reason="web audit time budget exhausted"
        ), ()
    started = time.monotonic()
    try:
        async with asyncio.timeout(remaining):
            return await check.attempt(wctx)
    except TimeoutError:
        reason = "check did not finish within the web audit time budget"
    except Exception as exc:
        # Only the exception type: messages of unexpected errors may quote peer data.
        log_internal(log, f"web check {check.name}", exc)
        reason = internal_error(exc)
    return Attempt(
        check=check.name,
        status=AttemptStatus.ERROR,
        reason=reason,
        duration_ms=(time.monotonic() - started) * 1000,
    ), ()


__all__ = ["WebAuditor"]
