"""Self-contained HTML report: inline CSS and SVG, a CSP that forbids every fetch and script.

Layout for a board (issue 25): the headline, then what to fix first (:mod:`.fixfirst`), then
per-asset tables whose ids, severities and dates never break inside a word (the finding
column alone wraps), evidence as sentences (:mod:`.evidence`) with the full evidence behind a
``<details>``. ``board=True`` is the print variant (the PDF): every Fix-first step open.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources

import jinja2
import markupsafe

from pacsradar import __version__
from pacsradar.models import AttemptStatus, EvidenceValue, Finding, ScanReport, Severity
from pacsradar.report import evidence
from pacsradar.report.charts import severity_chart, trend_chart
from pacsradar.report.context import ReportContext
from pacsradar.report.fixfirst import FixAction, action_of, fix_first
from pacsradar.report.safe import safe_url
from pacsradar.store.views import AcceptedRisk

#: Fix-first actions shown before the "more actions" fold, and with their steps open.
FIX_SHOWN = 6
FIX_OPEN = 0


def _json_text(value: EvidenceValue) -> str:
    return json.dumps(value, ensure_ascii=False)


#: Tokens a line must never break inside: CVE and check ids, host:port labels, versions.
_ID = re.compile(r"CVE-\d{4}-\d+|\b[A-Z][A-Z0-9]+(?:-[A-Z0-9]+)+\b|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")


def keep_ids(text: object) -> markupsafe.Markup:
    """``text`` escaped, with each id wrapped in a no-wrap span (escaping comes first, so a peer
    string can never open markup; ids contain nothing escaping changes)."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(_ID.sub(lambda m: f'<span class="nowrap">{m.group(0)}</span>', escaped))  # noqa: S704


def make_environment(*packages: str) -> jinja2.Environment:
    """A Jinja2 environment with autoescape ON for every template, whatever its name."""
    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader(p, "templates") for p in packages]
    loaders.append(jinja2.PackageLoader("pacsradar.report", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters["tojson_text"] = _json_text
    env.filters["safe_url"] = safe_url
    env.filters["evidence_view"] = evidence.view
    env.filters["keep_ids"] = keep_ids
    return env


@cache
def _env() -> jinja2.Environment:
    return make_environment()


@cache
def report_css() -> str:
    return resources.files("pacsradar.report").joinpath("templates/report.css").read_text("utf-8")


@dataclass(frozen=True)
class Row:
    finding: Finding
    risk: AcceptedRisk | None
    first_seen: datetime | None
    view: evidence.EvidenceView
    #: 1-based rank of the Fix-first action behind it (None for informational findings)
    fix: int | None


@dataclass(frozen=True)
class InfoRow:
    """A service that is not DICOM answering on a DICOM port (no finding, worth knowing)."""

    port: int
    protocol: str
    answered_with: str


@dataclass(frozen=True)
class Asset:
    host: str
    rows: tuple[Row, ...]
    info: tuple[InfoRow, ...]
    worst: Severity | None
    #: "port/protocol product" of each service with a known product
    products: tuple[str, ...]


def not_dicom_services(report: ScanReport) -> list[tuple[str, InfoRow]]:
    """Open endpoints where the DICOM service check found another protocol (PS3.8 §9.3: no
    A-ASSOCIATE answer), e.g. an HTTP server on port 104."""
    out: list[tuple[str, InfoRow]] = []
    for r in report.results:
        if not r.reachable:
            continue
        for a in r.attempts:
            answered = a.details.get("answered_with")
            if a.details.get("dicom") is False and isinstance(answered, str):
                out.append((r.endpoint.host, InfoRow(r.endpoint.port, r.endpoint.protocol, answered)))
                break
    return out


def assets_of(ctx: ReportContext, actions: Sequence[FixAction]) -> list[Asset]:
    ranks = action_of(actions)
    rows: dict[str, list[Row]] = {}
    products: dict[str, dict[str, None]] = {}
    # Services worst first, a service's findings together, worst first within it.
    worst: dict[tuple[str, int, str], int] = {}
    for f in ctx.findings:
        key = (f.endpoint.host, f.endpoint.port, f.endpoint.protocol)
        worst[key] = max(worst.get(key, 0), f.severity.rank)

    def order(f: Finding) -> tuple[int, int, str, int, str]:
        ep = f.endpoint
        return (-worst[(ep.host, ep.port, ep.protocol)], ep.port, ep.protocol, -f.severity.rank, f.check_id)

    for f in sorted(ctx.findings, key=order):
        rows.setdefault(f.endpoint.host, []).append(
            Row(
                finding=f,
                risk=ctx.accepted_for(f),
                first_seen=ctx.first_seen.get(f.dedupe_key),
                view=evidence.view(f.evidence),
                fix=ranks.get(f.dedupe_key),
            )
        )
        if f.product:
            label = f"{f.endpoint.port}/{f.endpoint.protocol} {f.product}"
            products.setdefault(f.endpoint.host, {}).setdefault(label, None)
    info: dict[str, list[InfoRow]] = {}
    for host, row in not_dicom_services(ctx.report):
        info.setdefault(host, []).append(row)
    hosts = sorted(set(rows) | set(info), key=_host_key)
    return [
        Asset(
            host=h,
            rows=tuple(rows.get(h, ())),
            info=tuple(info.get(h, ())),
            worst=max((r.finding.severity for r in rows.get(h, ())), key=lambda s: s.rank, default=None),
            products=tuple(products.get(h, {})),
        )
        for h in hosts
    ]


def _host_key(host: str) -> tuple[int, str]:
    return (0, host) if host[:1].isdigit() else (1, host)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _dated(ctx: ReportContext) -> bool:
    """A First-seen column only when it tells something: some finding is older than this scan."""
    day = ctx.report.started_at.date()
    return any(seen.date() < day for seen in ctx.first_seen.values())


def headline_notes(ctx: ReportContext) -> list[str]:
    """Short lines under the headline. Another figure for the board is one more line here."""
    notes: list[str] = []
    # How distinct patients were told apart (issue 22) and services sharing one configuration.
    if ctx.exposure.link_sentence:
        notes.append(f"{ctx.exposure.link_sentence}.")
    if ctx.fleets.sentence:
        notes.append(f"{ctx.fleets.sentence}.")
    if ctx.first_seen:
        start = _utc(ctx.report.started_at)
        keys = {f.dedupe_key for f in ctx.report.findings}
        new = sum(1 for k, seen in ctx.first_seen.items() if k in keys and _utc(seen) >= start)
        notes.append(
            f"{new:,} of the {len(keys):,} findings are new in this scan."
            if new < len(keys)
            else "Every finding was first seen in this scan."
        )
    untested = ctx.report.stats.endpoints_error
    if untested:
        notes.append(
            f"{untested:,} open endpoint{'s' if untested != 1 else ''} could not be fully tested "
            "(not the same as safe)."
        )
    return notes


def render_html(ctx: ReportContext, *, board: bool = False) -> str:
    actions = fix_first(ctx.findings)
    errors = [
        (r.endpoint.label, a.check, a.reason)
        for r in ctx.report.results
        for a in r.attempts
        if a.status is AttemptStatus.ERROR
    ]
    template = _env().get_template("report.html.j2")
    return template.render(
        report=ctx.report,
        version=__version__,
        generated_at=ctx.generated_at.isoformat(timespec="seconds"),
        exposure=ctx.exposure,
        notes=headline_notes(ctx),
        counts=ctx.severity_counts,
        severity=severity_chart(ctx.severity_counts),
        trend=trend_chart(ctx.trend),
        trend_points=len(ctx.trend),
        actions=actions,
        fix_shown=len(actions) if board else FIX_SHOWN,
        fix_open=FIX_OPEN,
        assets=assets_of(ctx, actions),
        dated=_dated(ctx),
        findings=ctx.findings,
        errors=errors,
        board=board,
        css=report_css(),
    )


__all__ = [
    "Asset",
    "InfoRow",
    "Row",
    "assets_of",
    "make_environment",
    "not_dicom_services",
    "render_html",
    "report_css",
]
