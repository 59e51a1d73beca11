"""Debian CTN's ``simple_storage`` (package ctn), a real Storage SCP of another lineage.

Ready once it answers C-ECHO: a bare TCP connect-and-close makes it exit (found while writing
tests/dicom/test_more_peers.py), and it binds 0.0.0.0, so 127.0.0.1:port is then taken.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from lab.ports import PeerStartError, start_on_free_port, wait_for_echo

SIMPLE_STORAGE = shutil.which("simple_storage")


@contextlib.contextmanager
def start_simple_storage(workdir: Path) -> Iterator[int]:
    """simple_storage on a free port, one process per association; yields the port."""
    if SIMPLE_STORAGE is None:
        raise PeerStartError("Debian ctn not installed (scripts/apt-packages.txt)")
    binary = SIMPLE_STORAGE

    def start(ports: list[int]) -> tuple[int, subprocess.Popen[bytes]]:
        # -s: do not dump received attributes; -x: files (none are sent) go under workdir;
        # -f: one process per association (single-process mode stalls after the readiness probe)
        proc = subprocess.Popen(
            [binary, "-f", "-s", "-x", str(workdir), str(ports[0])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir, start_new_session=True,
        )  # fmt: skip
        try:
            wait_for_echo(ports[0], proc, "simple_storage")
        except BaseException:
            _stop(proc)
            raise
        return ports[0], proc

    # A port taken before simple_storage bound it: it exits, and starts again on another
    port, proc = start_on_free_port(start, attempts=3)
    try:
        yield port
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)
