"""The SYN gate on loopback (root: a raw socket): real listeners, refusals, dropped SYNs, forgeries.

An open port answers SYN-ACK, a closed one RST, and a listener whose accept queue is full drops
the SYN (a filtered port). Engine sweeps through either gate must give the same records.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.ports import dropping_port, listening_port
from pacsradar.config import Limits, ScanOptions
from pacsradar.engine import Engine
from pacsradar.models import ScanReport, TargetResult, UnreachableGroup
from pacsradar.scan import default_auditors
from pacsradar.store import Store, StoreObserver
from pacsradar.sweep import use_syn
from pacsradar.syngate import OPEN, REFUSED, SILENT, SynGate, syn_packet, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


@pytest.fixture
def listener() -> Iterator[tuple[str, int]]:
    with listening_port("127.0.0.91") as endpoint:
        yield endpoint


@pytest.fixture
def dropping() -> Iterator[tuple[str, int]]:
    with dropping_port("127.0.0.92") as endpoint:
        yield endpoint


async def _outcomes(gate: SynGate, endpoints: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    got: dict[tuple[str, int], int] = {}
    done = asyncio.Event()

    def reply(host: str, port: int, outcome: int) -> None:
        got[(host, port)] = outcome
        if len(got) == len(endpoints):
            done.set()

    for host, port in endpoints:
        assert gate.send(host, port, reply) is None
    await asyncio.wait_for(done.wait(), 10)
    return got


async def test_the_syn_gate_tells_open_refused_and_silent_ports_apart(
    listener: tuple[str, int], dropping: tuple[str, int]
) -> None:
    # Given a listening port, a closed port and a port whose SYNs are dropped
    gate = SynGate(asyncio.get_running_loop(), timeout=1.3)
    try:
        # When the gate sends each one SYN (and one more after a second for the silent one)
        got = await _outcomes(gate, [listener, ("127.0.0.93", 9), dropping])
    finally:
        gate.close()
    # Then each gets nmap's state of its port, exactly once
    assert got == {listener: OPEN, ("127.0.0.93", 9): REFUSED, dropping: SILENT}
    # And nothing waits any more
    assert gate.pending == 0


async def test_an_answer_that_does_not_acknowledge_our_cookie_is_ignored(dropping: tuple[str, int]) -> None:
    # Given a SYN waiting for an answer from a silent endpoint
    gate = SynGate(asyncio.get_running_loop(), timeout=0.8)
    forger = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    forger.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    try:
        task = asyncio.ensure_future(_outcomes(gate, [dropping]))
        async with asyncio.timeout(10):  # until our SYN is out: only then can its answer be forged
            while gate.sent == 0:
                await asyncio.sleep(0.01)
        # When someone forges a SYN-ACK and an RST from that endpoint with a guessed acknowledgement
        host, port = dropping
        for flags in (0x12, 0x14):
            packet = bytearray(
                syn_packet(socket.inet_aton(host), socket.inet_aton("127.0.0.1"), port, gate.port, 1)
            )
            struct.pack_into("!IB", packet, 28, 12345, 0)  # ack number, then keep the offset byte
            packet[32] = 5 << 4
            packet[33] = flags
            forger.sendto(bytes(packet), ("127.0.0.1", 0))
        got = await task
    finally:
        forger.close()
        gate.close()
    # Then the endpoint is still silent: neither forgery opened nor closed it
    assert got == {dropping: SILENT}


class _Collect:
    def __init__(self) -> None:
        self.results: list[TargetResult] = []
        self.groups: list[UnreachableGroup] = []

    def on_start(self, scan_id: str, total: int | None) -> None:
        return None

    def on_result(self, result: TargetResult) -> None:
        self.results.append(result)

    def on_unreachable(self, group: UnreachableGroup) -> None:
        self.groups.append(group)

    def on_finish(self, report: ScanReport) -> None:
        return None

    def records(self) -> list[tuple[str, int, bool, str | None, tuple[str, ...]]]:
        rows = [
            (r.endpoint.host, r.endpoint.port, r.reachable, r.error, tuple(a.check for a in r.attempts))
            for r in self.results
        ]
        rows += [
            (r.endpoint.host, r.endpoint.port, r.reachable, r.error, tuple(a.check for a in r.attempts))
            for g in self.groups
            for r in g.results()
        ]
        return sorted(rows)


@pytest.mark.parametrize("gate", ["connect", "syn"])
def test_an_engine_sweep_gives_the_same_records_through_either_gate(
    gate: str, listener: tuple[str, int], dropping: tuple[str, int]
) -> None:
    # Given a sweep of an open port (no DICOM behind it), closed ports and a silent port
    pairs = [listener, dropping, *((f"127.0.0.{n}", 11112) for n in range(94, 110))]
    limits = Limits(connect_timeout=1.2, read_timeout=1.0, assoc_timeout=1.0, target_deadline=10, gate=gate)
    options = ScanOptions(
        limits=limits,
        only=frozenset({"dicom"}),
        dicom_ports=tuple({p for _, p in pairs}),
        web_ports=(),
        share_ports=(),
    )
    seen = _Collect()
    # When the engine runs it through this gate
    engine = Engine(options, default_auditors(options), [seen])
    report = asyncio.run(engine.run(pairs, total=len(pairs)))
    # Then the SYN gate is used only when asked for
    assert engine.syn is (gate == "syn")
    # And the records are those of the connect gate: one open (could not test), 16 refused, 1 silent
    rows = seen.records()
    assert len(rows) == len(pairs)
    assert [r[:3] for r in rows if r[2]] == [(*listener, True)]
    refused = [r for r in rows if r[3] == "connect failed (Connection refused)"]
    silent = [r for r in rows if r[3] == "connect did not complete within 1.2s"]
    assert len(refused) == 16 and [r[:2] for r in silent] == [dropping]
    assert report.stats.endpoints_closed == 16 and report.stats.endpoints_filtered == 1
    assert report.stats.endpoints_open == 1


def test_auto_chooses_the_syn_gate_only_when_descriptors_cannot_hold_the_rate() -> None:
    # Given this process's open-file budget (one descriptor per connect-gate endpoint)
    from pacsradar.pools import size_pools

    slow, fast = Limits(rate=1000), Limits(rate=1_000_000)
    # When auto is asked / Then a rate the descriptors can hold keeps the connect gate
    assert use_syn(slow, size_pools(slow)[0]) is False
    # And a rate they cannot hold takes the SYN gate; "connect" never does, rate 0 never does
    assert use_syn(fast, size_pools(fast)[0]) is True
    assert use_syn(Limits(rate=1_000_000, gate="connect"), 10) is False
    assert use_syn(Limits(rate=0), 10) is False


@pytest.mark.timeout(180)
@pytest.mark.parametrize("rate", [0, 20_000])
def test_a_dense_sweep_loses_no_answer_to_a_full_receive_buffer(rate: int, tmp_path: Path) -> None:
    # Given 65,536 loopback endpoints that all answer at once (RST), swept at full speed or at
    # 20,000/s (whose one-second burst sends without suspending), into a store as the CLI does
    pairs = [(f"127.8.{n >> 8}.{n & 0xFF}", 11112) for n in range(65_536)]
    limits = Limits(connect_timeout=1.5, rate=rate, gate="syn")
    options = ScanOptions(
        limits=limits, only=frozenset({"dicom"}), dicom_ports=(11112,), web_ports=(), share_ports=()
    )
    store = Store(f"sqlite:///{tmp_path / 'dense.db'}")
    try:
        # When the engine sweeps them through the SYN gate
        engine = Engine(options, default_auditors(options), [StoreObserver(store)])
        report = asyncio.run(engine.run(pairs, total=len(pairs)))
    finally:
        store.close()
    # Then every answer was read: all closed, none reported filtered for want of reading it
    assert report.stats.endpoints_done == len(pairs)
    assert report.stats.endpoints_closed == len(pairs)
    assert report.stats.endpoints_filtered == 0
