"""Every report format: right content, hostile strings escaped for that format, no PHI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import jsonschema
import pacsradar_samples as S
import pytest

from pacsradar.errors import UsageError
from pacsradar.models import ScanReport
from pacsradar.report import FORMATS, ReportContext, render
from pacsradar.report.safe import FORMULA_TRIGGERS, csv_cell, md
from pacsradar.report.sarif import build_sarif, sarif_schema
from pacsradar.report.tabular import CSV_COLUMNS
from pacsradar.store import Store
from pacsradar.store.views import AcceptedRisk

NOW = datetime(2026, 1, 6, tzinfo=UTC)
RISK = AcceptedRisk(
    id=1,
    check_id=S.TLS,
    asset="127.0.0.2",
    reason=S.HOSTILE_BANNER,
    expires_at=NOW + timedelta(days=30),
    created_at=NOW,
)


@pytest.fixture
def ctx() -> ReportContext:
    return ReportContext(report=S.lab_report(), accepted=(RISK,), generated_at=NOW)


def canaries() -> list[bytes]:
    forms = [S.CANARY_NAME, S.CANARY_ID, "ZZCANARY", "QUILLON"]
    return [v for f in forms for v in (f.encode(), f.lower().encode(), f.encode("utf-16-le"))]


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_format_leaks_the_canary_or_raw_markup(ctx: ReportContext, fmt: str) -> None:
    # Given a scan whose peer held the canary patient and sent hostile markup
    # When rendered in this format
    out = render(fmt, ctx).encode()
    # Then no canary bytes, and no markup verbatim (CSV aside: it is data, not markup)
    for needle in canaries():
        assert out.count(needle) == 0
    if fmt != "csv":
        for marker in S.MARKUP_MARKERS:
            assert marker.encode() not in out


def test_unknown_format_is_a_usage_error(ctx: ReportContext) -> None:
    with pytest.raises(UsageError):
        render("docx", ctx)


# -- HTML -------------------------------------------------------------------------------------

ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "p",
    "h1",
    "h2",
    "h3",
    "div",
    "section",
    "strong",
    "span",
    "code",
    "br",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "ul",
    "ol",
    "li",
    "caption",
    "details",
    "summary",
    "a",
    "svg",
    "g",
    "text",
    "rect",
    "line",
    "polyline",
    "circle",
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_opens_with_the_exposure_figure_and_is_self_contained(ctx: ReportContext) -> None:
    # Given the lab report / When rendered as HTML
    out = render("html", ctx)
    parsed = _Tags()
    parsed.feed(out)
    # Then the headline is the exposure figure (per-host max: 120 patients across 2 services)
    assert (
        '<h1 class="headline" id="headline">at least 120 distinct patients, 340 studies, 51,234 images '
        "exposed across 2 services</h1>" in out
    )
    # And only inert tags are used, no event handler attribute, no script, no remote resource
    assert parsed.tags <= ALLOWED_TAGS
    assert not [a for a, _ in parsed.attrs if a.startswith("on")]
    assert not [v for a, v in parsed.attrs if a in ("src", "srcset", "action")]
    hrefs = [v for a, v in parsed.attrs if a == "href"]
    assert hrefs
    # javascript: refs are text only; the rest are links inside the page (row -> its Fix-first action)
    assert all(h and h.startswith(("https://", "#fix-")) for h in hrefs)
    assert "Content-Security-Policy" in out
    assert "default-src 'none'" in out
    # And the hostile strings arrive as text, escaped in the source
    text = "".join(parsed.text)
    assert S.HOSTILE_BANNER in text
    assert S.HOSTILE_AE in text
    assert "&lt;script&gt;" in out


def test_html_shows_severity_chart_trend_and_accepted_risk(tmp_path: Path) -> None:
    # Given three stored scans of one scope and an accepted risk
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        for i in range(3):
            store.save_report(S.lab_report(f"s{i}", started=S.T0 + timedelta(days=i)))
        store.add_accepted_risk(S.TLS, "127.0.0.2", "isolated VLAN", NOW + timedelta(days=9000))
        # When the newest is rendered from the store
        ctx = ReportContext.from_store(store)
    out = render("html", ctx)
    # Then the trend covers the three scans, and the accepted finding is marked
    assert ctx.report.scan_id == "s2"
    assert len(ctx.trend) == 3
    assert out.count("<polyline") == 2
    assert "3 scans of this scope." in out
    assert 'data-severity="critical"' in out
    assert "accepted until" in out
    assert ctx.first_seen  # first-seen dates come from the store's history


# -- SARIF ------------------------------------------------------------------------------------


def test_shipped_schema_is_the_official_file() -> None:
    # Given the schema shipped in the package / Then its hash is the one PROVENANCE.md records
    data = resources.files("pacsradar.report").joinpath("schemas/sarif-schema-2.1.0.json")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    provenance = resources.files("pacsradar.report").joinpath("schemas/PROVENANCE.md").read_text()
    assert digest == "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
    assert digest in provenance
    assert sarif_schema()["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")


def test_sarif_validates_against_the_official_schema(ctx: ReportContext) -> None:
    # Given the lab report with an accepted risk / When rendered as SARIF
    data = json.loads(render("sarif", ctx))
    # Then it validates against the OASIS SARIF 2.1.0 schema (draft-04)
    validator = jsonschema.Draft4Validator(sarif_schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    assert errors == []
    run = data["runs"][0]
    assert len(run["results"]) == len(ctx.report.findings)
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {S.DICOM_PHI, S.DICOM_ANON, S.TLS, S.WEB_PHI}
    suppressed = [r for r in run["results"] if r.get("suppressions")]
    assert len(suppressed) == 1
    assert suppressed[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "dicom://127.0.0.2:104"
    )
    # And the hostile strings are data (round-trip intact), never raw markup in the file
    assert json.loads(render("sarif", ctx)) == build_sarif(ctx)
    assert S.HOSTILE_BANNER in json.dumps(data, ensure_ascii=False)


def test_empty_scan_sarif_still_validates() -> None:
    empty = ReportContext(report=S.report("empty", []))
    data = json.loads(render("sarif", empty))
    assert list(jsonschema.Draft4Validator(sarif_schema()).iter_errors(data)) == []
    assert data["runs"][0]["results"] == []


# -- CSV --------------------------------------------------------------------------------------


def test_csv_neutralises_formulas(ctx: ReportContext) -> None:
    # Given the lab report (a product banner is =HYPERLINK(...)) / When rendered as CSV
    rows = list(csv.reader(io.StringIO(render("csv", ctx))))
    # Then it parses back with one row per finding, and no cell starts a formula
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + len(ctx.report.findings)
    for row in rows:
        for cell in row:
            assert not cell or cell[0] not in FORMULA_TRIGGERS
    products = {r[CSV_COLUMNS.index("product")] for r in rows[1:]}
    assert "'" + S.HOSTILE_FORMULA in products
    accepted = [r for r in rows[1:] if r[CSV_COLUMNS.index("accepted_risk")]]
    assert len(accepted) == 1


@pytest.mark.parametrize(
    ("raw", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("  =x", "'  =x"),
        ("\uff1dx", "'\uff1dx"),
        ("plain", "plain"),
        (4242, "4242"),
        (None, ""),
    ],
)
def test_csv_cell(raw: object, cell: str) -> None:
    assert csv_cell(raw) == cell


# -- JSON, Markdown, DefectDojo ---------------------------------------------------------------


def test_json_round_trips_the_scan_report(ctx: ReportContext) -> None:
    # Given the lab report / When rendered as JSON and parsed back
    data = json.loads(render("json", ctx))
    # Then it is the ScanReport plus its schema version, the exposure figure and accepted risks
    assert data.pop("schema_version") == 1
    assert data.pop("exposure") == ctx.exposure.model_dump()
    assert len(data.pop("accepted_risks")) == 1
    assert isinstance(data.pop("could_not_test"), list)
    assert data.pop("fleets") == ctx.fleets.model_dump(mode="json")
    # And what to fix first, worst patients first (an additive key: the schema version stays 1)
    fixes = data.pop("fix_first")
    assert fixes[0]["headline"] == (
        "Restrict DICOM associations to registered peers on 1 server: at least 120 patients"
    )
    assert ScanReport.model_validate(data) == ctx.report


def test_markdown_escapes_markup_links_and_table_pipes(ctx: ReportContext) -> None:
    # Given the lab report (a summary holds a link, pipes, emphasis and code)
    out = render("md", ctx)
    # Then the table keeps its column count, and nothing becomes a link or HTML
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert {line.replace("\\|", "").count("|") for line in table} == {8}
    assert "](javascript:" not in out
    assert "\\[click\\]\\(javascript:alert\\(1\\)\\)" in out
    assert "&lt;script&gt;" in out
    assert out.startswith("# pacsradar report")
    assert "**at least 120 distinct patients, 340 studies" in out


def test_md_escape_at_line_start() -> None:
    assert md("# title", line_start=True) == "\\# title"
    assert md("1. item", line_start=True) == "\\1. item"
    assert md("127.0.0.1") == "127.0.0.1"


# The fields DefectDojo's "Generic Findings Import" JSON parser requires and accepts
# (dojo/tools/generic/json_parser.py), plus the keys it pops before building a Finding.
DD_REQUIRED = {"title", "severity", "description"}
DD_ALLOWED = DD_REQUIRED | {
    "date",
    "cwe",
    "cve",
    "mitigation",
    "impact",
    "steps_to_reproduce",
    "severity_justification",
    "references",
    "active",
    "verified",
    "false_p",
    "out_of_scope",
    "risk_accepted",
    "under_review",
    "is_mitigated",
    "mitigated",
    "numerical_severity",
    "param",
    "payload",
    "line",
    "file_path",
    "component_name",
    "component_version",
    "static_finding",
    "dynamic_finding",
    "scanner_confidence",
    "unique_id_from_tool",
    "vuln_id_from_tool",
    "nb_occurences",
    "publish_date",
    "service",
    "planned_remediation_date",
    "planned_remediation_version",
    "effort_for_fixing",
    "tags",
    "endpoints",
    "files",
    "vulnerability_ids",
    "cwes",
}


def test_defectdojo_generic_findings_import(ctx: ReportContext) -> None:
    # Given the lab report / When rendered for DefectDojo
    data = json.loads(render("defectdojo", ctx))
    # Then every finding has the required fields and only fields the importer accepts
    assert set(data) <= {
        "name",
        "type",
        "version",
        "description",
        "dynamic_tool",
        "static_tool",
        "soc",
        "findings",
    }
    findings = data["findings"]
    assert len(findings) == len(ctx.report.findings)
    for item in findings:
        assert set(item) >= DD_REQUIRED
        assert set(item) <= DD_ALLOWED
        assert item["severity"] in {"Critical", "High", "Medium", "Low", "Info"}
        assert isinstance(item["cwe"], int)
        datetime.fromisoformat(item["date"])
    assert len({f["unique_id_from_tool"] for f in findings}) == len(findings)
    assert sum(f["risk_accepted"] for f in findings) == 1
    # And the fields DefectDojo renders as Markdown carry no live link or HTML from a peer
    rendered = "".join(f[k] for f in findings for k in ("description", "mitigation", "references"))
    assert "javascript:" not in "".join(f["references"] for f in findings)
    assert "<script>" not in rendered
    assert "<img" not in rendered
    assert "&lt;script&gt;" in rendered


def test_every_report_lists_what_could_not_be_tested() -> None:
    # Given a scan in which one open endpoint never answered its protocol
    from pacsradar.models import Attempt, AttemptStatus, Endpoint, TargetResult

    silent = TargetResult(
        endpoint=Endpoint(host="192.0.2.77", port=104),
        reachable=True,
        attempts=(Attempt(check="dicom.service", status=AttemptStatus.ERROR, reason="no answer within 2s"),),
    )
    ctx = ReportContext(report=S.report("untested", [silent]))
    # When it is rendered in every format that has room for it
    html, md_text = render("html", ctx), render("md", ctx)
    doc, sarif = json.loads(render("json", ctx)), json.loads(render("sarif", ctx))
    # Then each names the endpoint and the reason, apart from the findings
    assert "Could not test" in html and "192.0.2.77:104" in html and "no answer within 2s" in html
    assert "## Could not test" in md_text and "192.0.2.77:104" in md_text
    endpoint = {"host": "192.0.2.77", "port": 104, "protocol": "unknown"}
    assert doc["could_not_test"] == [{"endpoint": endpoint, "reason": "dicom.service: no answer within 2s"}]
    notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert "192.0.2.77:104" in notes[0]["message"]["text"]
    assert list(jsonschema.Draft4Validator(sarif_schema()).iter_errors(sarif)) == []
    # And the headline does not claim "0 services" beside an open service
    assert "exposed across 0 services" not in html
