"""Exit codes, ranked: a scan error outranks findings; usage errors are separate."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # scan ran; nothing at or above --fail-on
    FINDINGS = 1  # findings at or above --fail-on
    USAGE = 2  # bad arguments or targets (typer/click also use 2)
    SCAN_ERROR = 3  # the scan itself could not run (not a per-target error)
    INCOMPLETE = 4  # with --fail-on: no finding at the threshold, but something could not be tested
    INTERRUPTED = 130  # Ctrl-C; partial results were still written
