"""Render a ScanReport for the terminal or as JSON/JSONL. Every peer string is escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pacsradar.models import Finding, ScanReport, Severity, TargetResult
from pacsradar.outcome import could_not_test
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


#: Below this width the terminal gets the one-finding-per-entry layout: a five-column table
#: squeezes the summary to a few characters per line (issue 12 point 6).
MIN_TABLE_WIDTH = 110


def plural(n: int, word: str) -> str:
    """``1 service``, ``2 services``: counts in output read as English."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _accepted_mark(f: Finding, accepted: Mapping[str, str]) -> str:
    until = accepted.get(f.dedupe_key)
    return f"accepted risk until {until}" if until else ""


def findings_table(report: ScanReport, accepted: Mapping[str, str] | None = None) -> Table:
    accepted = accepted or {}
    table = Table(title=f"pacsradar scan {_cell(report.scan_id)}", show_lines=False)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Endpoint", no_wrap=True)
    table.add_column("Product", max_width=24)
    table.add_column("Summary", overflow="fold", min_width=30)
    for f in _sorted(report.findings):
        mark = _accepted_mark(f, accepted)
        severity = f"[{SEVERITY_STYLE[f.severity]}]{f.severity.value}[/]"
        table.add_row(
            severity + ("\n[dim](accepted)[/]" if mark else ""),
            _cell(f.check_id),
            _cell(f.endpoint.label),
            _cell(f.product),
            _cell(f.summary) + (f" [dim]({_cell(mark)})[/]" if mark else ""),
        )
    return table


def errors_table(report: ScanReport) -> Table | None:
    rows = could_not_test(report)
    if not rows:
        return None
    table = Table(title="Could not test (not the same as safe)")
    table.add_column("Endpoint", no_wrap=True)
    table.add_column("Reason", overflow="fold", min_width=30)
    for r, reason in rows:
        table.add_row(_cell(r.endpoint.label), _cell(reason))
    return table


def summary_line(report: ScanReport, accepted: Mapping[str, str] | None = None) -> str:
    """``3 endpoints probed: 1 open, 1 closed, 1 filtered; 1 could not be tested; 2 findings``."""
    s = report.stats
    parts = [f"{plural(s.endpoints_done, 'endpoint')} probed: {s.endpoints_open} open"]
    parts.append(f"{s.endpoints_closed} closed")
    parts.append(f"{s.endpoints_filtered} filtered")
    text = ", ".join(parts)
    untested = len(could_not_test(report))
    text += f"; {untested} could not be tested" if untested else ""
    found = report.findings
    n_accepted = sum(1 for f in found if (accepted or {}).get(f.dedupe_key))
    text += f"; {plural(len(found), 'finding')}"
    if n_accepted:
        text += f" ({n_accepted} accepted)"
    suspects = {r.endpoint.label for r in report.results for f in r.findings if f.suspected_honeypot}
    if suspects:
        text += f"; {plural(len(suspects), 'service')} suspected honeypot (README 'Honeypots')"
    if s.interrupted:
        text += " (interrupted: partial results)"
    return text


def estate_lines(report: ScanReport) -> list[str]:
    """The estate headline (distinct across the scan), the per-service figure, labelled, how
    patients were linked, and the fleets (services sharing one configuration)."""
    from pacsradar.report.exposure import exposure_of
    from pacsradar.report.fleets import fleets_of

    exposure = exposure_of(report.findings)
    fleets = fleets_of(report.results).sentence
    if not exposure.services:
        return [fleets] if fleets else []
    lines = [f"Estate (distinct across the scan): {exposure.sentence}"]
    if exposure.services > 1:
        lines.append(exposure.per_service_sentence)
    if exposure.link_sentence:
        lines.append(exposure.link_sentence)
    if fleets:
        lines.append(fleets)
    return lines


def plain_lines(
    report: ScanReport, accepted: Mapping[str, str] | None = None, warnings: Sequence[str] = ()
) -> Iterator[str]:
    """The report off a terminal: one finding per line, tab-separated, nothing cut.

    ``finding<TAB>host:port<TAB>severity<TAB>check id<TAB>product<TAB>summary[<TAB>accepted ...]``,
    then ``could-not-test<TAB>host:port<TAB>reason`` lines, then ``# `` comment lines (the scan id
    in full, warnings, the summary): ``grep``, ``cut -f`` and ``awk -F'\\t'`` work on it.
    """
    accepted = accepted or {}
    yield f"# pacsradar scan {peer_text(report.scan_id, 200)}"
    for f in _sorted(report.findings):
        fields = [
            "finding",
            f.endpoint.label,
            f.severity.value,
            f.check_id,
            f.product or "-",
            f.summary or f.title,
        ]
        mark = _accepted_mark(f, accepted)
        if mark:
            fields.append(mark)
        yield "\t".join(peer_text(x, 4000) for x in fields)
    for r, reason in could_not_test(report):
        yield "\t".join(("could-not-test", peer_text(r.endpoint.label, 300), peer_text(reason, 4000)))
    for w in warnings:
        yield f"# warning: {peer_text(w, 1000)}"
    for line in estate_lines(report):
        yield f"# {line}"
    yield f"# {summary_line(report, accepted)}"


def print_report(
    report: ScanReport,
    console: Console,
    *,
    accepted: Mapping[str, str] | None = None,
    warnings: Sequence[str] = (),
    plain: bool | None = None,
) -> None:
    """The rich table on a wide terminal; one line per finding when piped or narrow.

    ``accepted`` maps a finding's dedupe key to the expiry date of the accepted risk covering it.
    """
    if plain is None:
        plain = not console.is_terminal
    if plain:
        # Straight to the file: rich would expand the tabs and wrap at its assumed 80 columns.
        for line in plain_lines(report, accepted, warnings):
            console.file.write(line + "\n")
        console.file.flush()
        return
    if console.width < MIN_TABLE_WIDTH:
        for line in _narrow(report, accepted, warnings):
            console.print(Text(line), highlight=False)
        return
    console.print(findings_table(report, accepted))
    errs = errors_table(report)
    if errs is not None:
        console.print(errs)
    for w in warnings:
        console.print(Text(f"warning: {w}", style="yellow"))
    for line in estate_lines(report):
        console.print(Text(line))
    console.print(Text(summary_line(report, accepted)))


def _narrow(report: ScanReport, accepted: Mapping[str, str] | None, warnings: Sequence[str]) -> Iterator[str]:
    """A narrow terminal: each finding as a heading line and its summary, wrapped by rich."""
    accepted = accepted or {}
    yield f"pacsradar scan {peer_text(report.scan_id, 200)}"
    for f in _sorted(report.findings):
        mark = _accepted_mark(f, accepted)
        product = f" ({peer_text(f.product, 200)})" if f.product else ""
        head = f"{f.severity.value.upper()}  {f.check_id}  {f.endpoint.label}{product}"
        yield head + (f"  [{mark}]" if mark else "")
        yield f"    {peer_text(f.summary or f.title, 4000)}"
    untested = could_not_test(report)
    if untested:
        yield "Could not test (not the same as safe):"
        for r, reason in untested:
            yield f"    {peer_text(r.endpoint.label, 300)}: {peer_text(reason, 4000)}"
    for w in warnings:
        yield f"warning: {peer_text(w, 1000)}"
    yield from estate_lines(report)
    yield summary_line(report, accepted)


def to_json(report: ScanReport, *, indent: int | None = 2) -> str:
    """The scan's JSON document: the same schema as ``report -f json`` (report/jsondoc.py)."""
    from pacsradar.report.jsondoc import document_json

    return document_json(report, indent=indent)


def iter_jsonl(report: ScanReport, accepted: Mapping[str, str] | None = None) -> Iterator[str]:
    """One line per finding, then could-not-test lines, then one summary line: easy to feed a
    SIEM. A finding covered by an accepted risk carries ``accepted_until``."""
    for f in _sorted(report.findings):
        data = json.loads(f.model_dump_json())
        data["scan_id"] = report.scan_id
        data["dedupe_key"] = f.dedupe_key
        if accepted and f.dedupe_key in accepted:
            data["accepted_until"] = accepted[f.dedupe_key]
        yield json.dumps(data, ensure_ascii=True, sort_keys=True)
    for r, reason in could_not_test(report):
        yield json.dumps(
            {
                "type": "could_not_test",
                "scan_id": report.scan_id,
                "endpoint": json.loads(r.endpoint.model_dump_json()),
                "reason": peer_text(reason, 4000),
            },
            ensure_ascii=True,
            sort_keys=True,
        )
    yield json.dumps(
        {
            "type": "summary",
            "scan_id": report.scan_id,
            **json.loads(report.stats.model_dump_json()),
            "exposure": _exposure(report),
            "fleets": _fleets(report),
        },
        sort_keys=True,
    )


def _exposure(report: ScanReport) -> dict[str, object]:
    from pacsradar.report.exposure import exposure_of

    return exposure_of(report.findings).model_dump(mode="json")


def _fleets(report: ScanReport) -> dict[str, object]:
    from pacsradar.report.fleets import fleets_of

    return fleets_of(report.results).model_dump(mode="json")


def result_jsonl(result: TargetResult) -> str:
    return result.model_dump_json()
