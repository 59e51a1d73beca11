"""Documentation generated from the code: the README check tables and the report JSON Schema.

``python -m pacsradar.docs [README.md]`` rewrites every block between
``<!-- checks:FAMILY:begin -->`` and ``<!-- checks:FAMILY:end -->`` from the registry, and
writes ``report/schemas/pacsradar-report.schema.json`` from the report models. The tests fail
when either has drifted from the code, naming this command.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pacsradar.families import BY_NAME
from pacsradar.registry import CheckInfo, catalogue

_BLOCK = re.compile(
    r"(<!-- checks:(?P<family>[a-z+]+):begin -->\n)(?P<body>.*?)(<!-- checks:(?P=family):end -->)",
    re.DOTALL,
)
COMMAND = "python -m pacsradar.docs"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(c: CheckInfo) -> str:
    intrusive = {"no": "no", "yes": "yes", "opt-in": f"opt-in: {c.intrusive_step}"}[c.intrusive]
    return f"| `{c.id}` | {c.severity.value} | {_cell(intrusive)} | {_cell(c.description)} |"


def check_table(*families: str) -> str:
    """The Markdown table of the checks that any of ``families`` reports, in registry order."""
    for name in families:
        if name not in BY_NAME:
            raise KeyError(f"unknown family {name!r}")
    rows = [_row(c) for c in catalogue() if any(f in c.families for f in families)]
    head = ["| Check id | Severity | Intrusive | What it means |", "|---|---|---|---|"]
    return "\n".join([*head, *rows]) + "\n"


def rewrite_readme(text: str) -> str:
    """``text`` with every check-table block regenerated (``share+files`` names two families)."""

    def block(match: re.Match[str]) -> str:
        families = match.group("family").split("+")
        return match.group(1) + check_table(*families) + match.group(4)

    return _BLOCK.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    readme = Path(args[0] if args else "README.md")
    old = readme.read_text(encoding="utf-8")
    new = rewrite_readme(old)
    if new != old:
        readme.write_text(new, encoding="utf-8")
    from pacsradar.report.jsondoc import SCHEMA_PATH, schema_text

    if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text(encoding="utf-8") != schema_text():
        SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover - the command line
    raise SystemExit(main())
