"""The dashboard: server-rendered pages and a JSON API over the findings store.

Security model: it binds 127.0.0.1 by default and every route but ``/static`` needs the token,
as ``Authorization: Bearer``, or once as ``?token=`` (which sets an HttpOnly, SameSite=Strict
session cookie derived from the token and redirects to the same URL without it). Pages are
read-only GETs, rendered by Jinja2 with autoescape on, and served with a CSP that allows no
script at all. Swagger/ReDoc are off (they load from a CDN); the OpenAPI document is at
``/openapi.json``, behind the token like everything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import jinja2
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from pacsradar import __version__
from pacsradar.dashboard.auth import COOKIE, session_matches, session_value, token_matches
from pacsradar.errors import StoreError, UsageError
from pacsradar.models import ScanReport, Severity
from pacsradar.report.charts import severity_chart, trend_chart
from pacsradar.report.context import EXTENSIONS, FORMATS, ReportContext
from pacsradar.report.dispatch import render
from pacsradar.report.exposure import Exposure
from pacsradar.report.fixfirst import fix_first
from pacsradar.report.html import make_environment, report_css
from pacsradar.report.safe import safe_json
from pacsradar.store import (
    AssetSummary,
    FindingEvent,
    FindingState,
    FindingStatus,
    ScanDiff,
    ScanSummary,
    SeverityCounts,
    Store,
    TrendPoint,
)

STATIC = Path(__file__).parent / "static"
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
_MEDIA = {
    "html": "text/html; charset=utf-8",
    "sarif": "application/sarif+json",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "defectdojo": "application/json",
}


class SafeJSONResponse(JSONResponse):
    """JSON with ``<``, ``>`` and ``&`` as ``\\u`` escapes: peer markup never appears verbatim."""

    def render(self, content: object) -> bytes:
        return safe_json(content, indent=None).encode("ascii")


FINDING_FILTERS: tuple[str, ...] = ("status", "severity", "check_id", "host")


def filter_url(filters: Mapping[str, str], **changes: str) -> str:
    """The findings page with ``filters`` changed by ``changes``: empty values are left out, so
    the URL carries exactly the filters in force (bookmarkable, shareable, back-button safe)."""
    merged = {**filters, **changes}
    query = [
        (k, merged[k])
        for k in FINDING_FILTERS
        if merged.get(k) and not (k == "status" and merged[k] == "open")
    ]
    return "/findings" + ("?" + urlencode(query) if query else "")


@cache
def _env() -> jinja2.Environment:
    env = make_environment("pacsradar.dashboard")
    env.globals["filter_url"] = filter_url
    return env


def local_redirect(path: str) -> str:
    """A redirect target that stays on this dashboard: one leading ``/``, never ``//host``.

    ``//evil.example/x`` (or ``/\\evil.example``, which browsers read the same way) in a
    Location header is a network-path reference to another site (RFC 3986 §4.2): an open
    redirect that would carry a logged-in user away. Anything but a plain local path goes to ``/``.
    """
    if not path.startswith("/") or path.startswith(("//", "/\\")) or "\\" in path:
        return "/"
    return path


def create_app(store: Store, *, token: str) -> FastAPI:
    """The dashboard app over ``store``; every request but ``/static`` must carry ``token``."""
    if len(token) < 16:
        raise ValueError("the dashboard token must be at least 16 characters")
    app = FastAPI(
        title="pacsradar dashboard",
        version=__version__,
        description="Findings store of pacsradar: scans, assets, findings, diffs. "
        "Authenticate with `Authorization: Bearer <token>`.",
        docs_url=None,
        redoc_url=None,
        default_response_class=SafeJSONResponse,
    )
    app.state.store = store

    @app.get("/static/report.css", include_in_schema=False)
    def report_stylesheet() -> Response:
        # One stylesheet for the HTML report and the dashboard: served from the report package.
        return Response(report_css(), media_type="text/css")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def require_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith("/static/"):
            return _secure(await call_next(request))
        query_token = request.query_params.get("token")
        if query_token is not None:
            if not token_matches(token, query_token):
                return _denied(request)
            # Trade the token in the URL for a cookie, and drop it from the address bar.
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = local_redirect(path) + ("?" + urlencode(rest) if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict", path="/")
            return _secure(response)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if token_matches(token, bearer) or session_matches(token, request.cookies.get(COOKIE)):
            return _secure(await call_next(request))
        return _denied(request)

    def st() -> Store:
        s: Store = app.state.store
        return s

    def page(name: str, **values: object) -> HTMLResponse:
        html = _env().get_template(name).render(version=__version__, **values)
        return HTMLResponse(html)

    # -- pages ---------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview() -> HTMLResponse:
        scans = st().list_scans(limit=20)
        latest = scans[0] if scans else None
        trend = st().trend(scope=latest.scope_key, limit=30) if latest else []
        open_states = st().findings()
        counts = SeverityCounts.of([s.finding.severity for s in open_states])
        # What to fix first in the newest scan (the scan the headline is about).
        actions = fix_first(st().load_report(latest.scan_id).findings) if latest else ()
        return page(
            "overview.html.j2",
            active="overview",
            latest=latest,
            exposure=latest.exposure if latest else Exposure(),
            scans=scans,
            open_counts=counts,
            severity=severity_chart(counts),
            trend=trend_chart(trend),
            trend_points=len(trend),
            assets=len(st().assets()),
            actions=actions,
        )

    @app.get("/assets", response_class=HTMLResponse, include_in_schema=False)
    def assets_page() -> HTMLResponse:
        return page("assets.html.j2", active="assets", assets=st().assets())

    @app.get("/findings", response_class=HTMLResponse, include_in_schema=False)
    def findings_page(
        status: Annotated[str, Query(pattern="^(open|resolved|all)$")] = "open",
        severity: Annotated[str, Query(pattern="^(|info|low|medium|high|critical)$")] = "",
        check_id: Annotated[str, Query(max_length=128)] = "",
        host: Annotated[str, Query(max_length=512)] = "",
    ) -> HTMLResponse:
        states = st().findings(
            status=None if status == "all" else FindingStatus(status),
            severity=Severity(severity) if severity else None,
            check_id=check_id or None,
            host=host or None,
        )
        return page(
            "findings.html.j2",
            active="findings",
            states=states,
            filters={"status": status, "severity": severity, "check_id": check_id, "host": host},
            severities=[s.value for s in sorted(Severity, key=lambda s: -s.rank)],
        )

    @app.get("/diff", response_class=HTMLResponse, include_in_schema=False)
    def diff_page(
        base: Annotated[str, Query(max_length=128)] = "",
        head: Annotated[str, Query(max_length=128)] = "",
    ) -> HTMLResponse:
        scans = st().list_scans(limit=200)
        diff: ScanDiff | None = None
        error = None
        try:
            diff = st().diff(base or None, head or None) if scans else None
        except StoreError as exc:
            error = str(exc)
        return page("diff.html.j2", active="diff", scans=scans, diff=diff, error=error)

    @app.get("/scans", response_class=HTMLResponse, include_in_schema=False)
    def scans_page() -> HTMLResponse:
        return page("scans.html.j2", active="scans", scans=st().list_scans(limit=500))

    @app.get("/scans/{scan_id}/report", include_in_schema=False)
    def scan_report_page(scan_id: str) -> Response:
        ctx = _context(st(), scan_id)
        response = HTMLResponse(render("html", ctx))
        response.headers["Content-Security-Policy"] = REPORT_CSP
        return response

    # -- JSON API ------------------------------------------------------------------------

    @app.get("/api/scans", response_model=list[ScanSummary], tags=["scans"])
    def api_scans(limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[ScanSummary]:
        return st().list_scans(limit=limit)

    @app.get("/api/scans/{scan_id}", response_model=ScanReport, tags=["scans"])
    def api_scan(scan_id: str) -> ScanReport:
        try:
            return st().load_report(scan_id)
        except StoreError:
            raise HTTPException(status_code=404, detail="no such scan") from None

    @app.get("/api/scans/{scan_id}/report", tags=["scans"], response_class=PlainTextResponse)
    def api_report(
        scan_id: str, format: Annotated[str, Query(pattern="^(" + "|".join(FORMATS) + ")$")] = "json"
    ) -> Response:
        try:
            body = render(format, _context(st(), scan_id))
        except UsageError:
            raise HTTPException(status_code=400, detail="unknown format") from None
        response = Response(body, media_type=_MEDIA[format])
        safe_id = "".join(ch for ch in scan_id if ch.isalnum() or ch in "-_")[:64] or "scan"
        response.headers["Content-Disposition"] = (
            f'attachment; filename="pacsradar-{safe_id}.{EXTENSIONS[format]}"'
        )
        if format == "html":
            response.headers["Content-Security-Policy"] = REPORT_CSP
        return response

    @app.get("/api/findings", response_model=list[FindingState], tags=["findings"])
    def api_findings(
        status: Annotated[str, Query(pattern="^(open|resolved|all)$")] = "open",
        severity: Severity | None = None,
        min_severity: Severity | None = None,
        check_id: Annotated[str | None, Query(max_length=128)] = None,
        host: Annotated[str | None, Query(max_length=512)] = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    ) -> list[FindingState]:
        return st().findings(
            status=None if status == "all" else FindingStatus(status),
            severity=severity,
            min_severity=min_severity,
            check_id=check_id,
            host=host,
            limit=limit,
        )

    @app.get("/api/findings/{dedupe_key}/history", response_model=list[FindingEvent], tags=["findings"])
    def api_history(dedupe_key: str) -> list[FindingEvent]:
        return st().finding_history(dedupe_key)

    @app.get("/api/assets", response_model=list[AssetSummary], tags=["assets"])
    def api_assets() -> list[AssetSummary]:
        return st().assets()

    @app.get("/api/diff", response_model=ScanDiff, tags=["scans"])
    def api_diff(base: str | None = None, head: str | None = None) -> ScanDiff:
        try:
            return st().diff(base, head)
        except StoreError:
            raise HTTPException(status_code=404, detail="no such scan to compare") from None

    @app.get("/api/trend", response_model=list[TrendPoint], tags=["scans"])
    def api_trend(
        scope: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 30,
    ) -> list[TrendPoint]:
        return st().trend(scope=scope, limit=limit)

    return app


def _context(store: Store, scan_id: str) -> ReportContext:
    try:
        return ReportContext.from_store(store, scan_id)
    except StoreError:
        raise HTTPException(status_code=404, detail="no such scan") from None


def _secure(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", PAGE_CSP)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cache-Control"] = "no-store"
    return response


def _denied(request: Request) -> Response:
    if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
        response: Response = SafeJSONResponse({"detail": "token required"}, status_code=401)
    else:
        html = _env().get_template("denied.html.j2").render(version=__version__)
        response = HTMLResponse(html, status_code=401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="pacsradar"'
    return _secure(response)


__all__ = ["create_app"]
