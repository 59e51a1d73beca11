"""The README's set-up (issue 25, point 4): its first command on a system Python under PEP 668.

Debian 12 and Ubuntu 24.04 mark their Python "externally managed": ``pip install`` into it fails
with error: externally-managed-environment. The README's first command must make and use its
own virtual environment, in one line, with no virtual environment active. This test runs that
exact line (read from the README) in a copy of the source tree, with Debian's
``/usr/bin/python3`` as ``python3`` and nothing activated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def readme_first_command() -> str:
    """The first command of the README's set-up block (the line after its ``# 1.`` comment)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Set-up", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("# 1."))
    return next(line for line in lines[start:] if line and not line.startswith("#"))


def _pep668_skip_reason() -> str | None:
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} is not installed"
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), "-c",
         "import sys, sysconfig, os, venv, ensurepip; assert sys.version_info >= (3, 11); "
         "print(os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"{SYSTEM_PYTHON} is older than 3.11 or has no venv module (python3-venv)"
    if probe.stdout.strip() != "True":
        return f"{SYSTEM_PYTHON} is not marked EXTERNALLY-MANAGED (PEP 668)"
    return None


def test_readme_first_command_is_one_line_that_makes_and_uses_a_venv() -> None:
    # Given the README, Then its first command creates a virtual environment and runs from it
    command = readme_first_command()
    assert command.startswith("python3 -m venv .venv && "), command
    assert " .venv/bin/pip install " in command and command.endswith(".venv/bin/pacsradar demo"), command


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_first_command_works_on_an_externally_managed_system_python(tmp_path: Path) -> None:
    reason = _pep668_skip_reason()
    if reason:
        pytest.skip(reason)
    # Given a copy of the source tree and a shell whose python3 is the PEP 668 system Python,
    # with no virtual environment active
    tree = tmp_path / "pacsradar"
    shutil.copytree(
        ROOT, tree,
        ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__", "*.so", "*.egg-info",
                                      ".mypy_cache", ".ruff_cache", "test-artifacts", "results", "*.db",
                                      "core.sha256"),
    )  # fmt: skip
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(SYSTEM_PYTHON)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(
        PATH=f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        NO_COLOR="1",
        XDG_DATA_HOME=str(tmp_path / "data"),
        PACSRADAR_NO_MYPYC="1",  # the optional compile is setup.py's own test (tests/files)
    )
    # When the README's first command runs there
    done = subprocess.run(
        ["bash", "-c", readme_first_command()], cwd=tree, env=env, capture_output=True, text=True,
        timeout=800, check=False,
    )  # fmt: skip
    # Then it succeeds without touching the system Python, and the demo found the exposed PACS
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert "externally-managed-environment" not in done.stderr
    assert "DICOM-QUERY-PHI" in done.stdout
    assert (tree / ".venv" / "bin" / "pacsradar").exists()
    # And the store lines it prints name the way to run pacsradar again from there
    assert ".venv/bin/pacsradar report " in done.stderr, done.stderr[-2000:]
