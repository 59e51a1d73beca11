"""Per-format escaping of strings that may come from a hostile peer.

:func:`pacsradar.phi.peer_text` has already bounded and de-controlled them; here each output
format gets its own escaping (HACKING.md rule 2).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

#: A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV Injection").
#: The full-width forms are included because some spreadsheet locales fold them.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet evaluates: a leading formula trigger gets a ``'``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    stripped = text.lstrip(" ")
    if text and (text[0] in FORMULA_TRIGGERS or (stripped and stripped[0] in FORMULA_TRIGGERS)):
        return "'" + text
    return text


_MD_INLINE = re.compile(r"([\\`*_{}\[\]()|~])")
_MD_LINE_START = re.compile(r"^([#+\-.!>=]|\d+[.)])")


def md(value: object, *, line_start: bool = False) -> str:
    """Escape text for inline Markdown (CommonMark and GFM tables): no markup, links or HTML.

    ``line_start``: the text begins a line, where ``#``, ``-``, ``1.`` and ``>`` are block
    markup too.
    """
    if value is None:
        return ""
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    text = " ".join(text.splitlines())
    if line_start:
        text = _MD_LINE_START.sub(lambda m: "\\" + m.group(0), text)
    return text


def safe_json(obj: Any, *, indent: int | None = 2) -> str:
    """JSON with ``<``, ``>``, ``&`` and line separators as ``\\u`` escapes.

    Same data for every JSON reader, but markup never appears verbatim, so the output stays
    inert if a viewer pastes it into a page.
    """
    return escape_markup(json.dumps(obj, indent=indent, ensure_ascii=True, sort_keys=False))


def escape_markup(text: str) -> str:
    """``<``, ``>`` and ``&`` of (ASCII) JSON text as ``\\u`` escapes; the text itself when it has
    none (no copy: most of a document has none)."""
    if "<" in text:
        text = text.replace("<", "\\u003c")
    if ">" in text:
        text = text.replace(">", "\\u003e")
    if "&" in text:
        text = text.replace("&", "\\u0026")
    return text


def safe_url(url: str | None) -> str | None:
    """Only http(s) links are rendered as links; anything else is shown as text."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


__all__ = ["FORMULA_TRIGGERS", "csv_cell", "escape_markup", "md", "safe_json", "safe_url"]
