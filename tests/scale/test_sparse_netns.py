"""The sparse internet (tests/lab/netns.py): answered, closed and silent endpoints, root only.

The scanner runs inside NS_SCAN; 198.18.0.0/15 is routed to NS_NET, which owns a few addresses
(pynetdicom SCPs or nothing) and drops everything else silently. No packet leaves the two
namespaces, which the test creates and always removes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lab.netns import SparseNet, netns_skip_reason

pytestmark = pytest.mark.timeout(240)

SCPS = (("198.18.0.10", 104), ("198.18.0.10", 11112), ("198.18.0.41", 11112))
CLOSED = ("198.18.0.20", "198.18.0.55")


@pytest.fixture(scope="module")
def sparse() -> SparseNet:
    reason = netns_skip_reason()
    if reason:
        pytest.skip(reason)
    net = SparseNet([h for h, _ in SCPS] + list(CLOSED))
    net.open()
    try:
        net.start_scps(list(SCPS))
        yield net  # type: ignore[misc]
    finally:
        net.close()


def _scan(net: SparseNet, *extra: str) -> dict[str, object]:
    argv = [sys.executable, "-m", "pacsradar", "scan", "198.18.0.0/26", "-p", "104,11112",
            "--no-default-ports", "--only", "dicom", "--connect-timeout", "1", "--no-store",
            "-f", "json", *extra]
    done = subprocess.run(net.argv(net.scan_ns, argv), capture_output=True, text=True, timeout=180,
                          env={**os.environ, "NO_COLOR": "1"}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "mode",
    [(), ("--workers", "2"), ("--gate", "syn"), ("--workers", "2", "--gate", "syn")],
    ids=["one-process", "workers-2", "syn-gate", "syn-gate-workers-2"],
)
def test_a_sparse_sweep_finds_the_servers_and_tells_closed_from_silent(
    sparse: SparseNet, mode: tuple[str, ...]
) -> None:
    # Given 64 addresses on two ports: 3 SCP endpoints, 2 hosts that answer RST, the rest silent
    # When pacsradar sweeps them from inside NS_SCAN
    report = _scan(sparse, *mode)
    stats = report["stats"]
    assert isinstance(stats, dict)
    # Then exactly the SCPs are found
    found = sorted((r["endpoint"]["host"], r["endpoint"]["port"]) for r in report["results"])  # type: ignore[attr-defined,index]
    assert found == sorted(SCPS)
    # And owned addresses without a listener are closed (RST), every other one filtered (silent)
    owned_closed = 2 * len(CLOSED) + 1  # 198.18.0.41:104 refuses too
    assert stats["endpoints_done"] == 128
    assert stats["endpoints_closed"] == owned_closed
    assert stats["endpoints_filtered"] == 128 - len(SCPS) - owned_closed
    assert stats["endpoints_error"] == 0
