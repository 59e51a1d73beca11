"""Report format names: a light module so the CLI can list them without importing renderers."""

from __future__ import annotations

FORMATS: tuple[str, ...] = ("html", "sarif", "csv", "json", "md", "defectdojo")
