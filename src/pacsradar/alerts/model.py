"""What an alert says: the changes of one scan against the previous scan of its scope."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from pacsradar import __version__
from pacsradar.errors import PacsradarError
from pacsradar.models import ScanReport, Severity
from pacsradar.report.exposure import Exposure, exposure_of
from pacsradar.store.views import AcceptedRisk, ChangeKind, FindingChange, ScanDiff, accepted_for


class AlertError(PacsradarError):
    """An alert could not be delivered (after its retries)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertItem(_Frozen):
    kind: ChangeKind
    dedupe_key: str
    check_id: str
    title: str
    severity: Severity
    previous_severity: Severity | None = None
    endpoint: str
    host: str
    port: int
    protocol: str
    product: str | None = None
    summary: str = ""


class AlertCounts(_Frozen):
    new: int = 0
    regressed: int = 0
    changed: int = 0
    resolved: int = 0


class Alert(_Frozen):
    """The JSON body of the webhook, and the content of the email and syslog messages."""

    event: str = "pacsradar.scan.changes"
    tool: str = "pacsradar"
    version: str = __version__
    scan_id: str
    base_scan_id: str | None
    scope: tuple[str, ...] = ()
    generated_at: datetime
    exposure: Exposure
    counts: AlertCounts
    #: changes muted by an unexpired accepted risk, or below the alert threshold.
    muted: int = 0
    items: tuple[AlertItem, ...] = ()

    @property
    def subject(self) -> str:
        c = self.counts
        parts = [
            f"{n} {label}"
            for n, label in (
                (c.new, "new"),
                (c.regressed, "regressed"),
                (c.changed, "changed"),
                (c.resolved, "resolved"),
            )
            if n
        ]
        scope = ", ".join(self.scope)[:80] or self.scan_id
        return one_line(f"[pacsradar] {', '.join(parts) or 'no change'} on {scope}")

    def text(self) -> str:
        lines = [
            self.subject,
            "",
            f"Scan {self.scan_id} compared with {self.base_scan_id or 'nothing (first scan)'}.",
            f"Now exposed: {self.exposure.sentence}.",
            "",
        ]
        for item in self.items:
            was = (
                f" (was {item.previous_severity.value})"
                if item.previous_severity and item.previous_severity != item.severity
                else ""
            )
            lines.append(
                one_line(
                    f"{item.kind.value.upper():10} {item.severity.value:8}{was} {item.check_id} "
                    f"on {item.endpoint}: {item.title}"
                )
            )
        if self.muted:
            lines += ["", f"{self.muted} change(s) muted by accepted risks or the threshold."]
        lines += ["", "Counts, keywords and keyed hashes only: no patient data in this alert."]
        return "\n".join(lines) + "\n"


def one_line(text: str, limit: int = 400) -> str:
    """No CR/LF or other control characters (header and syslog injection), bounded."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return cleaned[:limit]


def _item(change: FindingChange) -> AlertItem:
    f = change.finding
    previous = change.before.severity if change.before and change.after else None
    return AlertItem(
        kind=change.kind,
        dedupe_key=change.dedupe_key,
        check_id=f.check_id,
        title=f.title,
        severity=f.severity,
        previous_severity=previous,
        endpoint=f.endpoint.label,
        host=f.endpoint.host,
        port=f.endpoint.port,
        protocol=f.endpoint.protocol,
        product=f.product,
        summary=f.summary,
    )


def build_alert(
    diff: ScanDiff,
    *,
    report: ScanReport | None = None,
    accepted: Sequence[AcceptedRisk] = (),
    min_severity: Severity = Severity.LOW,
    include_resolved: bool = True,
    at: datetime | None = None,
) -> Alert | None:
    """The alert for ``diff``, or None when nothing is left to say after muting."""
    now = at or datetime.now(UTC)
    groups: list[tuple[ChangeKind, tuple[FindingChange, ...]]] = [
        (ChangeKind.NEW, diff.new),
        (ChangeKind.REGRESSED, diff.regressed),
        (ChangeKind.CHANGED, diff.changed),
    ]
    if include_resolved:
        groups.append((ChangeKind.RESOLVED, diff.resolved))
    kept: list[FindingChange] = []
    muted = 0
    for _kind, changes in groups:
        for change in changes:
            worst = max(
                (x.severity for x in (change.before, change.after) if x is not None),
                key=lambda s: s.rank,
            )
            if worst.rank < min_severity.rank or accepted_for(change.finding, list(accepted), now):
                muted += 1
                continue
            kept.append(change)
    if not kept:
        return None
    counts = AlertCounts(
        new=sum(c.kind is ChangeKind.NEW for c in kept),
        regressed=sum(c.kind is ChangeKind.REGRESSED for c in kept),
        changed=sum(c.kind is ChangeKind.CHANGED for c in kept),
        resolved=sum(c.kind is ChangeKind.RESOLVED for c in kept),
    )
    return Alert(
        scan_id=diff.head,
        base_scan_id=diff.base,
        scope=report.scope if report else (),
        generated_at=now,
        exposure=exposure_of(report.findings) if report else Exposure(),
        counts=counts,
        muted=muted,
        items=tuple(_item(c) for c in kept),
    )


__all__ = ["Alert", "AlertCounts", "AlertError", "AlertItem", "build_alert", "one_line"]
