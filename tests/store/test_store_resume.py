"""A scan SIGKILLed halfway keeps what it had, and resuming it ends like an uninterrupted scan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import fake_engine
import pytest

from pacsradar.errors import StoreError
from pacsradar.models import Endpoint
from pacsradar.store import ScanStatus, Store

HERE = Path(__file__).parent
HALF = 6


def _pairs(endpoints: Iterable[Endpoint]) -> set[tuple[str, int]]:
    return {(e.host, e.port) for e in endpoints}


def _wait_for_stored(
    url: str, scan_id: str, wanted: set[tuple[str, int]], child: subprocess.Popen[bytes]
) -> None:
    # Bounded polling, not a timed assertion: the child hangs by design after HALF endpoints.
    with Store(url) as store:
        for _ in range(3000):
            if child.poll() is not None:
                assert child.stderr is not None
                pytest.fail(f"scan child exited early: {child.stderr.read()!r}")
            try:
                if wanted <= store.resume(scan_id):
                    return
            except StoreError:  # the scan row may not exist yet
                pass
            time.sleep(0.05)
    pytest.fail("the scan child never stored its first endpoints")


def test_sigkilled_scan_resumes_to_the_same_findings(store_url: str) -> None:
    # Given an uninterrupted scan of the fake lab, as the reference
    reference = fake_engine.run(store_url, "reference", fake_engine.ENDPOINTS)
    # And the same scan in a child process, SIGKILLed after half the endpoints
    reachable_first_half = [e for i, e in enumerate(fake_engine.ENDPOINTS[:HALF]) if fake_engine.is_open(i)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, str(HERE / "fake_engine.py"), store_url, "killed", str(HALF)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_stored(store_url, "killed", _pairs(reachable_first_half), child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert child.stderr is not None
        child.stderr.close()
    with Store(store_url) as store:
        # Then every open endpoint it had finished is there (closed ports are batched: the
        # last batch may be lost, and is simply probed again), and the scan reads as running
        done = store.resume("killed")
        assert _pairs(reachable_first_half) <= done <= _pairs(fake_engine.ENDPOINTS[:HALF])
        assert store.get_scan("killed").status is ScanStatus.RUNNING
    # When it is resumed, skipping the finished endpoints
    remaining = [e for e in fake_engine.ENDPOINTS if (e.host, e.port) not in done]
    fake_engine.run(store_url, "killed", remaining)
    # Then it ends with exactly the reference's findings: nothing lost, nothing duplicated
    with Store(store_url) as store:
        resumed = store.load_report("killed")
        summary = store.get_scan("killed")
    assert sorted(f.dedupe_key for f in resumed.findings) == sorted(f.dedupe_key for f in reference.findings)

    def by_key(findings):  # type: ignore[no-untyped-def]
        return {f.dedupe_key: f for f in findings}

    assert by_key(resumed.findings) == by_key(reference.findings)
    assert len(resumed.results) == len(reference.results)
    assert summary.status is ScanStatus.FINISHED
    assert summary.stats.endpoints_done == len(fake_engine.ENDPOINTS)
    assert summary.stats.endpoints_total == len(fake_engine.ENDPOINTS)
