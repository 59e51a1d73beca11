"""A cluster whose worker cannot do what the plan asks: one clear error, never a traceback.

A real scheduler (a LocalCluster without workers of its own) and a real ``dask worker``
process started without CAP_NET_RAW (``setpriv``), so it cannot open the SYN gate's raw socket.
Root only (dropping a capability needs it); loopback only.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pacsradar.config import Limits, ScanOptions
from pacsradar.distributed import cluster as cluster_mod
from pacsradar.distributed.cluster import run_cluster_scan
from pacsradar.distributed.plan import ClusterPlan
from pacsradar.errors import ClusterError
from pacsradar.models import ScanReport, UnreachableGroup
from pacsradar.targets import parse_scope

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"),
]


class Finished:
    """Records the report the client hands its observers."""

    report: ScanReport | None = None

    def on_start(self, scan_id: str, total: int | None) -> None:
        pass

    def on_result(self, result: object) -> None:
        pass

    def on_unreachable(self, group: UnreachableGroup) -> None:
        pass

    def on_finish(self, report: ScanReport) -> None:
        self.report = report


@pytest.fixture(scope="module")
def rawless_client() -> Iterator[Any]:
    """A client on a scheduler whose one worker lacks CAP_NET_RAW."""
    import distributed

    with distributed.LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=0,
        processes=True,
        scheduler_port=0,
        dashboard_address=":0",
        host="127.0.0.1",
        silence_logs=logging.ERROR,
    ) as cluster:
        worker = subprocess.Popen(
            [
                "setpriv",
                "--bounding-set=-net_raw",
                "--inh-caps=-net_raw",
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                cluster.scheduler_address,
                "--nthreads",
                "2",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with distributed.Client(cluster, set_as_default=False) as client:  # type: ignore[no-untyped-call]
                client.wait_for_workers(1, timeout=90)
                yield client
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def _plan(scan_id: str) -> ClusterPlan:
    options = ScanOptions(
        only=frozenset({"dicom"}),
        dicom_ports=(),
        web_ports=(),
        share_ports=(),
        extra_ports=(4,),
        limits=Limits(connect_timeout=0.5, rate=0, gate="syn"),
    )
    return ClusterPlan.build(scan_id, parse_scope(["127.16.0.0/28"]), options, shard_endpoints=4)


def test_gate_syn_on_a_worker_without_cap_net_raw_is_one_clear_error(rawless_client: Any) -> None:
    # Given a plan that asks for the SYN gate and a worker that cannot open a raw socket
    seen = Finished()
    # When the scan starts
    with pytest.raises(ClusterError) as caught:
        run_cluster_scan(rawless_client, _plan("t-rawless"), [seen])
    # Then it is refused before any shard runs, naming the worker and the reason
    assert "--gate syn" in str(caught.value) and "CAP_NET_RAW" in str(caught.value)
    assert seen.report is None


def test_a_shard_that_raises_on_its_worker_ends_the_scan_with_one_line_and_keeps_the_rest(
    rawless_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same worker, and the client's check skipped (a worker that joined later, say)
    monkeypatch.setattr(cluster_mod, "_check_syn_workers", lambda client: None)
    seen = Finished()
    # When its shards raise on the worker (the engine refuses --gate syn there)
    with pytest.raises(ClusterError) as caught:
        run_cluster_scan(rawless_client, _plan("t-shard-fails"), [seen])
    # Then the error is one line with our own message, and no traceback text
    message = str(caught.value)
    assert message.startswith("a shard failed on a worker (") and "CAP_NET_RAW" in message
    assert "Traceback" not in message and "\n" not in message
    # And the observers got the report, marked interrupted, so the store can be resumed
    assert seen.report is not None and seen.report.stats.interrupted
