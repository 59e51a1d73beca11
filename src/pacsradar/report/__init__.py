"""Reports of a stored or fresh scan: HTML, SARIF 2.1.0, CSV, JSON, Markdown, DefectDojo.

Every renderer takes a :class:`~pacsradar.report.context.ReportContext` and returns text.
Hostile peer strings are escaped for each format (HTML autoescape, CSV formula neutralisation,
Markdown escaping, JSON ``<>&`` as ``\\u`` escapes), and nothing but the models' content is
written (HACKING.md rule 1).

The names are loaded lazily: :mod:`pacsradar.store` imports :mod:`pacsradar.report.exposure`
and the renderers import the store's read models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pacsradar.report.context import FORMATS, ReportContext
    from pacsradar.report.dispatch import render

__all__ = ["FORMATS", "ReportContext", "render"]


def __getattr__(name: str) -> Any:
    if name == "render":
        from pacsradar.report.dispatch import render

        return render
    if name in __all__:
        from pacsradar.report import context

        return getattr(context, name)
    raise AttributeError(name)
