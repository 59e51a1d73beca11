"""Self-contained HTML report: inline CSS and SVG, a CSP that forbids every fetch and script."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import jinja2

from pacsradar import __version__
from pacsradar.models import AttemptStatus, EvidenceValue, Finding
from pacsradar.report.charts import severity_chart, trend_chart
from pacsradar.report.context import ReportContext
from pacsradar.report.safe import safe_url
from pacsradar.store.views import AcceptedRisk


def _json_text(value: EvidenceValue) -> str:
    return json.dumps(value, ensure_ascii=False)


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
    return env


@cache
def _env() -> jinja2.Environment:
    return make_environment()


@cache
def report_css() -> str:
    return resources.files("pacsradar.report").joinpath("templates/report.css").read_text("utf-8")


def render_html(ctx: ReportContext) -> str:
    findings = ctx.findings
    by_host: dict[str, list[tuple[Finding, AcceptedRisk | None, object]]] = {}
    for f in findings:
        by_host.setdefault(f.endpoint.host, []).append(
            (f, ctx.accepted_for(f), ctx.first_seen.get(f.dedupe_key))
        )
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
        fleets=ctx.fleets,
        counts=ctx.severity_counts,
        severity=severity_chart(ctx.severity_counts),
        trend=trend_chart(ctx.trend),
        trend_points=len(ctx.trend),
        assets=sorted(by_host.items()),
        findings=findings,
        errors=errors,
        css=report_css(),
    )


__all__ = ["make_environment", "render_html", "report_css"]
