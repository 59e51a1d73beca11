"""What a result means for the user: nmap's port states and "could not test".

* **Port states as nmap names them** (nmap book, "Port Scanning Basics"): *open* (the TCP
  handshake completed), *closed* (the host answered with a reset: connection refused), *filtered*
  (no answer within the connect timeout, or an ICMP unreachable). A closed or filtered port
  never counts as "answered".
* **Could not test** is for a service that answered TCP and then not its protocol (a read
  timeout, a reset mid-association, a check that failed): such an endpoint is neither clean nor
  vulnerable, and every output says so (README: "Could not test never reads as safe").
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final, Literal

from pacsradar import __version__
from pacsradar.config import ScanOptions
from pacsradar.models import Attempt, AttemptStatus, ScanReport, ScanStats, TargetResult

__all__ = [
    "PORT_STATES",
    "PortState",
    "could_not_test",
    "error_state",
    "port_state",
    "scan_report",
    "settled_attempts",
    "untested_reason",
]

PortState = Literal["open", "closed", "filtered", "unresolved"]
PORT_STATES: Final[tuple[PortState, ...]] = ("open", "closed", "filtered", "unresolved")

# Our own messages (net.py, engine.py), matched on their start; never a peer's text.
_FILTERED_PREFIXES: Final = ("connect did not complete",)
_FILTERED_ERRNO_TEXT: Final = ("no route to host", "network is unreachable", "host is unreachable")
_UNRESOLVED: Final = ("name did not resolve", "excluded after name resolution")


def port_state(result: TargetResult) -> PortState:
    """The nmap state of the result's TCP port."""
    if result.reachable:
        return "open"
    error = (result.error or "").lower()
    if not error:
        reasons = [a.reason.lower() for a in result.attempts if a.reason]
        error = reasons[0] if reasons else ""
    return error_state(error)


@functools.lru_cache(maxsize=256)
def error_state(error: str) -> PortState:
    """The state of an endpoint that did not answer, from the engine's error message.

    A sweep's dead endpoints carry a handful of distinct messages, so the answer is cached
    (:class:`~pacsradar.models.UnreachableGroup` counts a whole group with one call).
    """
    error = error.lower()
    if error.startswith(_UNRESOLVED):
        return "unresolved"
    if error.startswith(_FILTERED_PREFIXES) or any(t in error for t in _FILTERED_ERRNO_TEXT):
        return "filtered"
    return "closed"


def untested_reason(result: TargetResult) -> str | None:
    """Why an open endpoint could not be (fully) tested, or ``None`` if it was."""
    if not result.reachable:
        return None
    if result.error:
        return result.error
    failed = next((a for a in result.attempts if a.status is AttemptStatus.ERROR), None)
    if failed is not None:
        return f"{failed.check}: {failed.reason or 'error'}"
    return None


#: First-contact probes: their error on a port means only "this protocol is not spoken here".
_FIRST_CONTACT = frozenset({"dicom.service"})


def settled_attempts(part: TargetResult, spoken: str | None) -> tuple[Attempt, ...]:
    """The DICOM probe's error (a read timeout) on a port another auditor then spoke (HTTP)
    did not fail to test the service: it is kept as a skipped attempt, with the reason, so
    the port is not 'could not test'. Any other error stays an error."""
    if spoken is None or part.service is not None:
        return part.attempts
    note = f"; the port speaks {spoken}"
    return tuple(
        a.model_copy(update={"status": AttemptStatus.SKIPPED, "reason": f"{a.reason or 'error'}{note}"})
        if a.status is AttemptStatus.ERROR and a.check in _FIRST_CONTACT
        else a
        for a in part.attempts
    )


def could_not_test(results: ScanReport | Iterable[TargetResult]) -> list[tuple[TargetResult, str]]:
    """Open endpoints that could not be fully tested, with the reason, in report order."""
    items = results.results if isinstance(results, ScanReport) else results
    out: list[tuple[TargetResult, str]] = []
    for result in items:
        reason = untested_reason(result)
        if reason is not None:
            out.append((result, reason))
    return out


def scan_report(
    scan_id: str,
    options: ScanOptions,
    started: datetime,
    scope: Sequence[str],
    counts: dict[str, int],
    total: int,
    interrupted: bool,
    kept: Sequence[TargetResult],
) -> ScanReport:
    """The finished scan's report, the same for a local and a distributed run.

    The scan-level honeypot tells (the web side of each host, archives shared across hosts)
    need every result, so they are applied here, once, before anything reads the report."""
    from pacsradar.dicom.honeypot.scanwide import cross_service

    try:
        kept = cross_service(
            kept, threshold=options.honeypot_threshold, count_honeypots=options.count_honeypots
        )
    except Exception as exc:
        # A bug in this pass never costs the scan (README "Limits and engine"): the per-service
        # scores stand; the type only (a message could quote a peer), the stack at debug.
        logging.getLogger(__name__).warning(
            "scan-level honeypot tells skipped: internal error: %s", type(exc).__name__
        )
        logging.getLogger(__name__).debug("scan-level honeypot pass failed", exc_info=True)
    return ScanReport(
        scan_id=scan_id,
        version=__version__,
        started_at=started,
        finished_at=datetime.now(UTC),
        scope=tuple(scope),
        options={
            "max_records": options.max_records,
            "intrusive": options.intrusive,
            "only": sorted(options.only),
            "honeypot_threshold": options.honeypot_threshold,
            "count_honeypots": options.count_honeypots,
        },
        stats=ScanStats(
            endpoints_total=total,
            endpoints_done=counts["done"],
            endpoints_open=counts["open"],
            endpoints_closed=counts["closed"],
            endpoints_filtered=counts["filtered"],
            endpoints_error=counts["error"],
            interrupted=interrupted,
        ),
        results=tuple(sorted(kept, key=lambda r: (r.endpoint.host, r.endpoint.port))),
    )
