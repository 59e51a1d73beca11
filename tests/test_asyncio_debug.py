"""The hostile-peer tests once more, in a subprocess with asyncio's debug mode (issue 11, point 2).

``PYTHONASYNCIODEBUG=1`` makes asyncio report every never-awaited coroutine, unclosed transport
and unretrieved task exception; with the autouse fixture in conftest.py and warnings as errors,
any such report fails the inner run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
HOSTILE_MODULES = ("dicom/test_hostile_peers.py", "web/test_hostile.py")


def test_hostile_peer_tests_stay_clean_in_asyncio_debug_mode() -> None:
    # Given the hostile-peer test modules, When they run with PYTHONASYNCIODEBUG=1
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *(str(TESTS / m) for m in HOSTILE_MODULES)],
        capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "PYTHONASYNCIODEBUG": "1"}, cwd=TESTS.parent,
    )  # fmt: skip
    # Then they all pass, and nothing was reported by asyncio
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    for noise in ("never retrieved", "was destroyed but it is pending", "was never awaited"):
        assert noise not in proc.stdout + proc.stderr
