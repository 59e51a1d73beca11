"""CSV, JSON, Markdown and DefectDojo Generic Findings Import renderers."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pacsradar.models import Finding, Severity
from pacsradar.outcome import could_not_test
from pacsradar.report.context import ReportContext
from pacsradar.report.jsondoc import document_json
from pacsradar.report.safe import csv_cell, md, safe_json, safe_url

CSV_COLUMNS: tuple[str, ...] = (
    "scan_id",
    "dedupe_key",
    "severity",
    "check_id",
    "title",
    "host",
    "port",
    "protocol",
    "product",
    "summary",
    "evidence",
    "remediation",
    "cwe",
    "references",
    "first_seen",
    "accepted_risk",
    "accepted_until",
)


def _evidence_text(finding: Finding) -> str:
    return json.dumps(finding.evidence, sort_keys=True, ensure_ascii=False)


def render_csv(ctx: ReportContext) -> str:
    """One row per finding. Every cell goes through :func:`csv_cell` (no formula injection)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for f in ctx.findings:
        risk = ctx.accepted_for(f)
        first = ctx.first_seen.get(f.dedupe_key)
        row: list[object] = [
            ctx.report.scan_id,
            f.dedupe_key,
            f.severity.value,
            f.check_id,
            f.title,
            f.endpoint.host,
            f.endpoint.port,
            f.endpoint.protocol,
            f.product or "",
            f.summary,
            _evidence_text(f),
            f.remediation,
            f.cwe or "",
            " ".join(r.url or r.title for r in f.references),
            first.isoformat() if first else "",
            risk.reason if risk else "",
            risk.expires_at.isoformat() if risk else "",
        ]
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


def render_json(ctx: ReportContext) -> str:
    """The scan's JSON document (:mod:`pacsradar.report.jsondoc`), as ``scan -o json`` writes it."""
    return document_json(ctx.report, accepted=ctx.accepted, at=ctx.generated_at) + "\n"


_SEVERITY_LABEL = {
    Severity.CRITICAL: "Critical",
    Severity.HIGH: "High",
    Severity.MEDIUM: "Medium",
    Severity.LOW: "Low",
    Severity.INFO: "Info",
}


def render_markdown(ctx: ReportContext) -> str:
    r = ctx.report
    counts = ctx.severity_counts
    untested = could_not_test(r)
    lines = [
        f"# pacsradar report: scan {md(r.scan_id)}",
        "",
        f"**{md(ctx.exposure.sentence)}.**",
        "",
        f"{md(ctx.exposure.per_service_sentence)}.",
        "",
        *((f"{md(ctx.exposure.link_sentence)}.", "") if ctx.exposure.link_sentence else ()),
        *((f"{md(ctx.fleets.sentence)}.", "") if ctx.fleets.sentence else ()),
        f"- Scope: {md(', '.join(r.scope) or 'n/a')}",
        f"- Started: {r.started_at.isoformat()}; finished: "
        f"{r.finished_at.isoformat() if r.finished_at else 'not finished'}",
        f"- Endpoints: {r.stats.endpoints_done} audited: {r.stats.endpoints_open} open, "
        f"{r.stats.endpoints_closed} closed, {r.stats.endpoints_filtered} filtered; "
        f"{len(untested)} could not be tested" + (" (interrupted)" if r.stats.interrupted else ""),
        "- Findings: "
        + ", ".join(f"{counts.get(s)} {s.value}" for s in sorted(Severity, key=lambda s: -s.rank)),
        "",
        "## Findings",
        "",
    ]
    if not ctx.findings:
        lines.append("No findings.")
    else:
        lines += [
            "| Severity | Check | Endpoint | Title | Summary | Product | Accepted risk |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for f in ctx.findings:
            risk = ctx.accepted_for(f)
            lines.append(
                "| "
                + " | ".join(
                    (
                        _SEVERITY_LABEL[f.severity],
                        md(f.check_id),
                        md(f.endpoint.label),
                        md(f.title),
                        md(f.summary),
                        md(f.product or ""),
                        md(f"until {risk.expires_at.date()}: {risk.reason}") if risk else "",
                    )
                )
                + " |"
            )
        lines += ["", "## Remediation", ""]
        for f in ctx.findings:
            lines.append(f"- **{md(f.check_id)}** on {md(f.endpoint.label)}: {md(f.remediation or 'n/a')}")
    if untested:
        lines += ["", "## Could not test (not the same as safe)", ""]
        lines += ["| Endpoint | Reason |", "| --- | --- |"]
        lines += [f"| {md(res.endpoint.label)} | {md(reason)} |" for res, reason in untested]
    lines.append("")
    return "\n".join(lines)


def _dd_finding(ctx: ReportContext, f: Finding) -> dict[str, Any]:
    risk = ctx.accepted_for(f)
    first = ctx.first_seen.get(f.dedupe_key)
    evidence = "\n".join(f"- {md(k)}: {md(json.dumps(v))}" for k, v in sorted(f.evidence.items()))
    description = "\n\n".join(
        part
        for part in (
            md(f.summary),
            f"Endpoint: {md(f.endpoint.label)} ({md(f.endpoint.protocol)})",
            f"Product: {md(f.product)}" if f.product else "",
            f"Evidence (counts, keywords and keyed hashes only):\n{evidence}" if evidence else "",
        )
        if part
    )
    item: dict[str, Any] = {
        "title": f"{f.title} ({f.endpoint.label})",
        "description": description,
        "severity": _SEVERITY_LABEL[f.severity],
        "mitigation": md(f.remediation),
        "references": "\n".join(
            f"- {md(r.title)}" + (f" <{url}>" if (url := safe_url(r.url)) else "") for r in f.references
        ),
        "date": (first or ctx.report.started_at).date().isoformat(),
        "active": True,
        "verified": False,
        "static_finding": False,
        "dynamic_finding": True,
        "unique_id_from_tool": f.dedupe_key,
        "vuln_id_from_tool": f.check_id,
        "service": f.endpoint.protocol,
        "endpoints": [f.endpoint.label if f.endpoint.protocol != "file" else f.endpoint.host],
        "risk_accepted": risk is not None,
    }
    if f.suspected_honeypot:  # README "Honeypots": verify out of band, not a breach
        item["tags"] = ["suspected-honeypot"]
    if f.cwe:
        digits = "".join(ch for ch in f.cwe if ch.isdigit())
        if digits:
            item["cwe"] = int(digits)
    if f.product:
        item["component_name"] = f.product
    if risk is not None:
        item["mitigation"] += f"\n\nAccepted risk until {risk.expires_at.date()}: {md(risk.reason)}"
    return item


def render_defectdojo(ctx: ReportContext) -> str:
    """DefectDojo "Generic Findings Import" JSON (its text fields are rendered as Markdown)."""
    from pacsradar import __version__

    data = {
        "name": "pacsradar",
        "type": "pacsradar",
        "version": __version__,
        "description": f"pacsradar scan {ctx.report.scan_id}",
        "dynamic_tool": True,
        "static_tool": False,
        "findings": [_dd_finding(ctx, f) for f in ctx.findings],
    }
    return safe_json(data) + "\n"


__all__ = ["CSV_COLUMNS", "render_csv", "render_defectdojo", "render_json", "render_markdown"]
