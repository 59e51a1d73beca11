"""Odd input never crashes an output (issue 11, point 6): rich markup in a target, an import
line or a path prints literally (no MarkupError, no styling, no OSC-8 hyperlink, even on a
terminal), and a file name that is not UTF-8 is escaped in every report format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pacsradar.phi import shown_path

#: FORCE_COLOR makes rich treat the pipe as a terminal: interpreted markup would show as escapes.
TERMINAL = {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "FORCE_COLOR": "1", "COLUMNS": "200"}
OSC8 = "\x1b]8;"
LINK = "[link=http://192.0.2.1/]click[/link]"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pacsradar", *args],
        capture_output=True, text=True, timeout=120, env=TERMINAL, cwd=cwd, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("target", ["[/]", LINK, "[bold]127.0.0.1[/bold]"])
def test_markup_in_a_target_is_a_plain_usage_error(target: str, tmp_path: Path) -> None:
    # Given a target that is rich markup, When scanning it on a (forced) terminal
    result = run_cli("scan", target, "--no-store", cwd=tmp_path)
    # Then a usage error that quotes it literally, no traceback, no hyperlink
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    assert OSC8 not in result.stderr
    assert target in result.stderr.replace("\n", "")


def test_markup_in_an_import_file_and_a_path_prints_literally(tmp_path: Path) -> None:
    # Given an import file whose first line is markup, and a files target that is markup
    listing = tmp_path / "hosts.txt"
    listing.write_text(f"{LINK}:104\n")
    imported = run_cli("scan", "--import", str(listing), "--no-store", cwd=tmp_path)
    path = run_cli("files", str(tmp_path / "[/]missing"), cwd=tmp_path)
    # Then both are usage errors shown as text
    for result in (imported, path):
        assert result.returncode == 2, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and OSC8 not in result.stderr
    assert "[/]missing" in path.stderr


def _strings(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def _pe_preamble_dicom(path: Path) -> None:
    """A DICOM file whose PS3.10 §7.1 preamble starts like a Windows executable ("MZ"): the
    files audit lists such files by path (the DICOM/PE polyglot, CVE-2019-11687)."""
    from pacsradar.lab.synthetic import make_studies

    ds = make_studies(1, seed=1)[0]
    ds.preamble = b"MZ" + b"\x90" * 58 + b"\x80\0\0\0" + b"\0" * 64
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes")
@pytest.mark.parametrize("fmt", ["json", "jsonl", "table"])
def test_a_file_name_that_is_not_utf8_is_escaped_in_every_format(fmt: str, tmp_path: Path) -> None:
    # Given a listed DICOM file whose name is not UTF-8 (and holds a terminal escape)
    root = tmp_path / "tree"
    root.mkdir()
    raw = b"scan\xff\xfe\x1b[31m.dcm"
    _pe_preamble_dicom(Path(os.fsdecode(bytes(root) + b"/" + raw)))
    # When the files audit lists paths in that format, to stdout and to a file
    out = tmp_path / f"report.{'txt' if fmt == 'table' else fmt}"
    shown = run_cli("files", str(root), "--show-paths", "-f", fmt, cwd=tmp_path)
    written = run_cli("files", str(root), "--show-paths", "-o", str(out), cwd=tmp_path)
    # Then neither crashes, and the name appears escaped, never raw bytes or a surrogate
    for result in (shown, written):
        assert result.returncode in (0, 1), result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    text = out.read_text(encoding="utf-8")
    # (the table itself is styled on a terminal: only the name's own escape must not pass)
    assert "\x1b[31m.dcm" not in shown.stdout and "\x1b[31m.dcm" not in text
    if fmt == "json":
        assert "scan\\xff\\xfe\\x1b[31m.dcm" in _strings(json.loads(shown.stdout))
        assert "scan\\xff\\xfe\\x1b[31m.dcm" in _strings(json.loads(text))
    elif fmt == "jsonl":
        assert all(json.loads(line) for line in shown.stdout.splitlines())


def test_shown_path_escapes_bytes_and_controls_but_keeps_utf8() -> None:
    assert shown_path(b"caf\xc3\xa9.dcm") == "café.dcm"
    assert shown_path(os.fsdecode(b"a\xff\nb")) == "a\\xff\\x0ab"
