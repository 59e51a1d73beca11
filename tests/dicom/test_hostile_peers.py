"""Hostile peers: each yields a clear error attempt within the deadline, with bounded memory,
while a healthy server in the same scan is still fully audited. All on 127.0.0.0/8."""

from __future__ import annotations

import contextlib
import tracemalloc

import pytest

from dicom.helpers import finding, result_for, scan
from lab.hostile import (
    AbortMidway,
    EndlessPending,
    HostileServer,
    HugePdu,
    MalformedAc,
    Silent,
    SlowFront,
    Trickle,
    run_in_thread,
)
from pacsradar.config import Limits
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies, summarise
from pacsradar.models import AttemptStatus

HOSTILE: dict[str, type[HostileServer]] = {
    "silent": Silent,
    "huge_pdu": HugePdu,
    "trickle": Trickle,
    "endless_pending": EndlessPending,
    "malformed_ac": MalformedAc,
    "abort_midway": AbortMidway,
}
LIMITS = Limits(connect_timeout=2.0, read_timeout=2.0, target_deadline=20.0)


@pytest.fixture(scope="module")
def hostile_lab() -> dict[str, tuple[str, int]]:
    with contextlib.ExitStack() as stack:
        addresses = {}
        for i, (name, cls) in enumerate(HOSTILE.items()):
            server = stack.enter_context(run_in_thread(cls(host=f"127.0.0.{60 + i}")))
            addresses[name] = (server.host, server.port)
        yield addresses  # type: ignore[misc]


def test_hostile_peers_fail_cleanly_and_healthy_peer_is_fully_audited(
    hostile_lab: dict[str, tuple[str, int]],
) -> None:
    # Given six hostile peers and one healthy exposed PACS in one scope
    studies = make_studies(3, seed=5)
    with ExposedPacs(studies, host="127.0.0.70") as pacs:
        healthy = ("127.0.0.70", pacs.port)
        # When one scan covers them all (memory traced across the whole scan)
        tracemalloc.start()
        try:
            report = scan([*hostile_lab.values(), healthy], limits=LIMITS, max_records=500)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # Then the scan finished, no hostile peer inflated memory (a 4 GB PDU is never allocated)
    assert report.stats.endpoints_done == len(hostile_lab) + 1
    assert peak < 64 * 1024 * 1024
    # And every hostile peer is reported as an error attempt with a reason, not as 'safe'
    for name, (host, port) in hostile_lab.items():
        result = next(r for r in report.results if (r.endpoint.host, r.endpoint.port) == (host, port))
        errors = [a for a in result.attempts if a.status is AttemptStatus.ERROR]
        assert errors, f"{name}: {result.attempts}"
        assert all(a.reason for a in errors)
    # And the healthy PACS was audited in full
    phi = finding(result_for(report, healthy[1]), "DICOM-QUERY-PHI")
    assert phi is not None and phi.evidence["studies"] == summarise(studies).studies


def test_huge_pdu_is_refused_with_a_size_reason(hostile_lab: dict[str, tuple[str, int]]) -> None:
    host, port = hostile_lab["huge_pdu"]
    report = scan([(host, port)], limits=LIMITS)
    reasons = " ".join(a.reason or "" for a in report.results[0].attempts)
    assert "bound" in reasons


def test_endless_pending_is_cut_at_the_bound(hostile_lab: dict[str, tuple[str, int]]) -> None:
    host, port = hostile_lab["endless_pending"]
    report = scan([(host, port)], limits=LIMITS, max_records=200)
    query = next(a for a in report.results[0].attempts if a.check == "dicom.query")
    assert query.status is AttemptStatus.ERROR
    assert query.details["records"] == 200 and query.details["truncated"] is True


def test_many_dicom_ports_on_one_host_do_not_starve_each_other() -> None:
    # Given more exposed DICOM services on one host than the per-host limit (4)
    from contextlib import ExitStack

    studies = make_studies(1, seed=8)
    with ExitStack() as stack:
        ports = [stack.enter_context(ExposedPacs(studies, host="127.0.0.75")).port for _ in range(6)]
        # When one scan audits them all, including the check that opens a second association
        report = scan([("127.0.0.75", p) for p in ports], limits=LIMITS, intrusive=True)
    # Then every one is reported with its findings, none lost to a deadline
    assert len(report.results) == 6
    for result in report.results:
        assert result.reachable
        assert finding(result, "DICOM-QUERY-PHI") is not None
        assert all(a.check != "engine.deadline" for a in result.attempts)


def test_a_connect_timeout_is_could_not_test_not_closed() -> None:
    # Given a listener whose accept queue is full, so new SYNs are dropped (a filtered port)
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.76", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # never accepted: fills the backlog
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.76", port))
            fillers.append(filler)
        # When pacsradar probes it with a short connect timeout
        limits = Limits(connect_timeout=1.0, read_timeout=1.0, target_deadline=10.0)
        report = scan([("127.0.0.76", port)], limits=limits)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    # Then it is not reported open, nor closed: filtered (nmap's word), kept as an error
    # attempt, so it can never resolve a stored finding
    assert report.stats.endpoints_filtered == 1
    assert report.stats.endpoints_closed == 0
    assert not report.results


def test_a_slow_but_honest_pacs_is_still_fully_audited() -> None:
    # Given a real PACS whose answers reach us only after 0.7 s, past half of a 1 s
    # association timeout (so pacsradar sends its line-based nudge before the answer arrives)
    studies = make_studies(2, seed=8)
    with ExposedPacs(studies, host="127.0.0.71") as pacs:
        front = SlowFront(("127.0.0.71", pacs.port), delay=0.7, host="127.0.0.72")
        with run_in_thread(front) as relay:
            # When it is audited with --assoc-timeout 1
            limits = Limits(connect_timeout=2.0, read_timeout=3.0, assoc_timeout=1.0, target_deadline=30.0)
            report = scan([(relay.host, relay.port)], limits=limits)
    result = result_for(report, relay.port)
    # Then the nudged association was not reused for DIMSE: a clean one was opened, and the
    # query exposure is counted exactly
    assert result.service == "dicom"
    phi = finding(result, "DICOM-QUERY-PHI")
    assert phi is not None, result.attempts
    assert phi.evidence["studies"] == summarise(studies).studies
    assert "DICOM-ANY-AE" in {f.check_id for f in result.findings}


def test_silence_past_the_association_timeout_is_no_answer_not_safe() -> None:
    # Given a peer that accepts TCP and never answers
    with run_in_thread(Silent(host="127.0.0.73")) as silent:
        limits = Limits(connect_timeout=2.0, read_timeout=3.0, assoc_timeout=1.0, target_deadline=30.0)
        # When it is audited with --assoc-timeout 1
        report = scan([(silent.host, silent.port)], limits=limits)
    result = result_for(report, silent.port)
    # Then the service check is an error attempt that says what was not answered
    service = next(a for a in result.attempts if a.check == "dicom.service")
    assert service.status is AttemptStatus.ERROR
    assert service.reason is not None and "A-ASSOCIATE-RQ within 1s" in service.reason
    assert result.findings == ()


def test_a_pynetdicom_peer_slower_than_the_nudge_is_still_audited() -> None:
    # Given a real pynetdicom SCP that takes 0.9 s to answer an A-ASSOCIATE-RQ (its own
    # EVT_REQUESTED handler is slow), past the 0.5 s line-based nudge. Its reactor reads the
    # nudge as the next PDU: a bare blank line (an incomplete header) left it silent.
    import time

    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title="SLOWSCP")
    ae.add_supported_context(Verification)
    ae.require_called_aet = False
    server = ae.start_server(
        ("127.0.0.74", 0),
        block=False,
        evt_handlers=[(evt.EVT_REQUESTED, lambda event: time.sleep(0.9))],
    )
    try:
        port = server.socket.getsockname()[1]
        # When it is audited with the default association timeout
        limits = Limits(connect_timeout=2.0, read_timeout=3.0, target_deadline=30.0)
        report = scan([("127.0.0.74", port)], limits=limits)
    finally:
        server.shutdown()
    result = result_for(report, port)
    # Then it is found to be DICOM and audited on a clean, patient association, not left as
    # "could not test"
    assert result.service == "dicom", result.attempts
    assert "DICOM-ANY-AE" in {f.check_id for f in result.findings}, result.attempts
