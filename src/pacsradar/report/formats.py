"""Report format names: a light module so the CLI can list them without importing renderers."""

from __future__ import annotations

FORMATS: tuple[str, ...] = ("html", "sarif", "csv", "json", "md", "defectdojo")
#: Formats written as bytes (``report -f pdf``); :func:`pacsradar.report.dispatch.render_bytes`.
BINARY_FORMATS: tuple[str, ...] = ("pdf",)
REPORT_FORMATS: tuple[str, ...] = FORMATS + BINARY_FORMATS
