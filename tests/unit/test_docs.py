"""The README check tables are generated from the registry; they fail here when they drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pacsradar.docs import COMMAND, check_table, rewrite_readme
from pacsradar.registry import catalogue

README = Path(__file__).parents[2] / "README.md"


def test_readme_check_tables_match_the_registry() -> None:
    # Given the README as committed
    text = README.read_text(encoding="utf-8")
    # When its check-table blocks are regenerated from the registry
    # Then nothing changes
    assert rewrite_readme(text) == text, f"README check tables drifted from the registry: run {COMMAND}"


def test_every_check_id_is_in_a_readme_table() -> None:
    # Given the README's generated blocks
    text = README.read_text(encoding="utf-8")
    blocks = "".join(re.findall(r"<!-- checks:[a-z+]+:begin -->(.*?)<!-- checks", text, re.DOTALL))
    # Then every check the registry knows has a row
    missing = [c.id for c in catalogue() if f"| `{c.id}` |" not in blocks]
    assert missing == []


def test_table_rows_escape_pipes_and_name_the_opt_in_step() -> None:
    # Given the DICOM table
    table = check_table("dicom")
    # Then every row has four cells, and the C-MOVE probe is marked opt-in
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows and all(line.replace("\\|", "").count("|") == 5 for line in rows)
    assert "opt-in: one C-MOVE" in table
    with pytest.raises(KeyError):
        check_table("nope")
