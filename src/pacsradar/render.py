"""Render a ScanReport for the terminal or as JSON/JSONL. Every peer string is escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pacsradar.models import Finding, ScanReport, Severity, TargetResult
from pacsradar.phi import peer_text

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def _cell(value: str | None) -> str:
    """Terminal-safe: control characters (ANSI escapes) dropped, rich markup escaped."""
    return escape(peer_text(value or "", limit=4000))


def _sorted(findings: tuple[Finding, ...]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity.rank, f.endpoint.host, f.endpoint.port, f.check_id))


def findings_table(report: ScanReport) -> Table:
    table = Table(title=f"pacsradar scan {_cell(report.scan_id)}", show_lines=False)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Endpoint", no_wrap=True)
    table.add_column("Product", max_width=24)
    table.add_column("Summary", overflow="fold")
    for f in _sorted(report.findings):
        table.add_row(
            f"[{SEVERITY_STYLE[f.severity]}]{f.severity.value}[/]",
            _cell(f.check_id),
            _cell(f.endpoint.label),
            _cell(f.product),
            _cell(f.summary),
        )
    return table


def errors_table(report: ScanReport) -> Table | None:
    rows = [r for r in report.results if r.error]
    if not rows:
        return None
    table = Table(title="Could not fully test (not the same as safe)")
    table.add_column("Endpoint")
    table.add_column("Reason", overflow="fold")
    for r in rows:
        table.add_row(_cell(r.endpoint.label), _cell(r.error))
    return table


def print_report(report: ScanReport, console: Console) -> None:
    console.print(findings_table(report))
    errs = errors_table(report)
    if errs is not None:
        console.print(errs)
    from pacsradar.report.exposure import exposure_of

    exposure = exposure_of(report.findings)
    if exposure.services:
        console.print(f"[bold]Estate (distinct across the scan):[/] {escape(exposure.sentence)}")
        console.print(escape(exposure.per_service_sentence))
    s = report.stats
    console.print(
        f"{s.endpoints_done} endpoints probed, {s.endpoints_open} answered, "
        f"{len(report.findings)} findings"
        + (" [bold yellow](interrupted: partial results)[/]" if s.interrupted else "")
    )


def to_json(report: ScanReport, *, indent: int | None = 2) -> str:
    return report.model_dump_json(indent=indent)


def iter_jsonl(report: ScanReport) -> Iterator[str]:
    """One line per finding, then one summary line: easy to feed a SIEM."""
    for f in _sorted(report.findings):
        data = json.loads(f.model_dump_json())
        data["scan_id"] = report.scan_id
        data["dedupe_key"] = f.dedupe_key
        yield json.dumps(data, ensure_ascii=True, sort_keys=True)
    yield json.dumps(
        {
            "type": "summary",
            "scan_id": report.scan_id,
            **json.loads(report.stats.model_dump_json()),
            "exposure": _exposure(report),
        },
        sort_keys=True,
    )


def _exposure(report: ScanReport) -> dict[str, object]:
    from pacsradar.report.exposure import exposure_of

    return exposure_of(report.findings).model_dump(mode="json")


def result_jsonl(result: TargetResult) -> str:
    return result.model_dump_json()
