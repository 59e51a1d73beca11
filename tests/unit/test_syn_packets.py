"""The SYN gate's packets and filter, and how ``--gate`` is chosen (no raw socket needed)."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacsradar import syngate
from pacsradar.cli.scanopts import scan_options
from pacsradar.config import Limits, ScanOptions
from pacsradar.errors import UsageError
from pacsradar.syngate import SynTemplate, bpf_dst_port, syn_packet, tcp_checksum

addresses = st.binary(min_size=4, max_size=4)
ports = st.integers(min_value=1, max_value=65535)


@given(src=addresses, dst=addresses, sport=ports, dport=ports, seq=st.integers(0, 0xFFFFFFFF))
def test_a_syn_segment_carries_a_checksum_that_verifies(
    src: bytes, dst: bytes, sport: int, dport: int, seq: int
) -> None:
    # Given any source, destination, ports and initial sequence number
    # When the gate builds its probe
    packet = syn_packet(src, dst, sport, dport, seq)
    # Then it is an IPv4 header and a 20-byte TCP segment with exactly the SYN flag
    assert len(packet) == 40 and packet[0] == 0x45 and packet[9] == socket.IPPROTO_TCP
    assert packet[12:16] == src and packet[16:20] == dst
    segment = packet[20:]
    got_sport, got_dport, got_seq, ack, offset, flags = struct.unpack("!HHIIBB", segment[:14])
    assert (got_sport, got_dport, got_seq, ack, offset >> 4, flags) == (sport, dport, seq, 0, 5, 0x02)
    # And its checksum verifies over the pseudo-header (RFC 9293 §3.1: the sum with it is 0)
    assert tcp_checksum(src, dst, segment) == 0


@given(
    src=addresses,
    sport=ports,
    probes=st.lists(st.tuples(addresses, ports, st.integers(0, 0xFFFFFFFF)), max_size=5),
)
def test_a_prebuilt_template_writes_the_very_packet_syn_packet_builds(
    src: bytes, sport: int, probes: list[tuple[bytes, int, int]]
) -> None:
    # Given one source's template, reused probe after probe (issue 26)
    template = SynTemplate(src, sport)
    for dst, dport, seq in probes:
        # When it writes a probe / Then the bytes are syn_packet's, byte for byte
        got = bytes(template.packet(dst, int.from_bytes(dst, "big"), dport, seq))
        assert got == syn_packet(src, dst, sport, dport, seq)


def test_the_socket_filter_passes_only_segments_to_the_gates_port() -> None:
    # Given the gate's classic BPF program for source port 40000
    program = bpf_dst_port(40000)
    insns = [struct.unpack("HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    # Then it loads the IPv4 header length, then the TCP destination port, and compares it
    assert [i[0] for i in insns] == [0xB1, 0x48, 0x15, 0x06, 0x06]
    assert insns[1][3] == 2 and insns[2][3] == 40000
    # And it accepts on a match and drops otherwise
    assert insns[3][3] == 0xFFFF and insns[4][3] == 0


def test_an_unknown_gate_is_a_usage_error() -> None:
    # Given a --gate value that is not a gate / When the options are built / Then one clear error
    with pytest.raises(UsageError, match="--gate takes auto, connect, syn"):
        _options(gate="raw")
    with pytest.raises(ValueError, match="gate must be one of"):
        Limits(gate="raw")


def test_a_syn_gate_without_the_right_to_open_raw_sockets_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a process that may not open raw sockets
    monkeypatch.setattr(syngate, "unavailable_reason", lambda: "the SYN gate needs CAP_NET_RAW (run as root)")
    # When --gate syn is asked for on this machine / Then the reason is the error
    with pytest.raises(UsageError, match="--gate syn: the SYN gate needs CAP_NET_RAW"):
        _options(gate="syn")
    # And a remote cluster's workers decide for themselves (their rights are not ours to know)
    assert _options(gate="syn", remote=True).limits.gate == "syn"


def _options(**kw: object) -> ScanOptions:
    args: dict[str, Any] = dict(
        ports="104",
        only=None,
        concurrency=0,
        per_host=4,
        rate=1000.0,
        connect_timeout=3.0,
        read_timeout=5.0,
        assoc_timeout=2.0,
        deadline=60.0,
        max_records=10,
        intrusive=False,
        aet_wordlist=None,
        calling_aet="PACSRADAR",
        link_key=None,
    )
    args.update(kw)
    return scan_options(**args)
