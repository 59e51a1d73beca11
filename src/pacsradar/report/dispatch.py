"""The one entry point that picks a renderer for a format name."""

from __future__ import annotations

from collections.abc import Callable

from pacsradar.errors import UsageError
from pacsradar.report import html, sarif, tabular
from pacsradar.report.context import ReportContext
from pacsradar.report.formats import FORMATS, REPORT_FORMATS


def render(fmt: str, ctx: ReportContext) -> str:
    """Render ``ctx`` in one of :data:`FORMATS`."""
    return _renderer(fmt)(ctx)


def render_bytes(fmt: str, ctx: ReportContext) -> bytes:
    """Render ``ctx`` in one of :data:`~pacsradar.report.formats.REPORT_FORMATS` (text as UTF-8).

    ``pdf`` prints the HTML report with headless Chromium (:mod:`pacsradar.report.pdf`).
    """
    if fmt == "pdf":
        from pacsradar.report.pdf import render_pdf

        return render_pdf(ctx)
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format; choose one of {', '.join(REPORT_FORMATS)}")
    return render(fmt, ctx).encode("utf-8")


def _renderer(fmt: str) -> Callable[[ReportContext], str]:
    table: dict[str, Callable[[ReportContext], str]] = {
        "html": html.render_html,
        "sarif": sarif.render_sarif,
        "csv": tabular.render_csv,
        "json": tabular.render_json,
        "md": tabular.render_markdown,
        "defectdojo": tabular.render_defectdojo,
    }
    try:
        return table[fmt]
    except KeyError:
        raise UsageError(f"unknown report format; choose one of {', '.join(FORMATS)}") from None


__all__ = ["render", "render_bytes"]
