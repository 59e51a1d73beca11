"""Streamed imports (``--import -``, pacsradar.pipe): line formats, the bounded queue, the rules."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os

import pytest

from pacsradar.config import ScanOptions
from pacsradar.errors import TargetError
from pacsradar.pipe import QUEUE_BATCHES, READ_BYTES, ImportStream, StreamedEndpoints
from pacsradar.plan import ScanPlan
from pacsradar.targets.imports import LineImport


def _feed(lines: list[str]) -> list[tuple[str, int | None]]:
    parser = LineImport()
    return [entry for line in lines for entry in parser.feed(line)]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # masscan -oL
        (["#masscan", "open tcp 4242 192.0.2.7 1700000000", "open udp 53 192.0.2.8 1", "# end"],
         [("192.0.2.7", 4242)]),
        # masscan -oJ: one record a line, commas before or after, brackets alone
        (["[", '{ "ip": "192.0.2.9", "timestamp": "1", "ports": [ {"port": 104, "proto": "tcp",'
          ' "status": "open"} ] }', ",", '{ "ip": "192.0.2.10", "ports": [ {"port": 11112,'
          ' "proto": "tcp", "status": "open"} ] },', "]"],
         [("192.0.2.9", 104), ("192.0.2.10", 11112)]),
        # masscan -oD (ndjson)
        (['{"ip":"192.0.2.11","port":104,"proto":"tcp","status":"open"}'], [("192.0.2.11", 104)]),
        # zmap -O csv with a header: only successful SYN-ACKs, on the port that answered
        (["saddr,sport,classification,success", "192.0.2.12,4242,synack,1", "192.0.2.13,4242,rst,0"],
         [("192.0.2.12", 4242)]),
        # zmap's default output: addresses only (scanned on the scan's ports)
        (["192.0.2.14", "192.0.2.15"], [("192.0.2.14", None), ("192.0.2.15", None)]),
    ],
    ids=["masscan-oL", "masscan-oJ", "masscan-oD", "zmap-csv", "zmap-default"],
)  # fmt: skip
def test_each_scanner_format_is_read_line_by_line(
    lines: list[str], expected: list[tuple[str, int | None]]
) -> None:
    # Given another scanner's output, When it is fed one line at a time, Then its open TCP
    # endpoints come out in order
    assert _feed(lines) == expected


def test_a_bad_line_names_its_number_and_the_format() -> None:
    # Given masscan list output whose second record has a bad port
    parser = LineImport()
    parser.feed("open tcp 104 192.0.2.1 1")
    # When it arrives, Then the error names the line and the format, once
    with pytest.raises(TargetError, match=r"^line 2 \(read as masscan list \(-oL\)\): invalid port"):
        parser.feed("open tcp 99999 192.0.2.1 1")


def _nonblocking_writer(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


def _fill(fd: int, line: bytes) -> int:
    """Write ``line`` until the pipe is full; the bytes written."""
    block = line * (READ_BYTES // len(line))
    written = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            written += os.write(fd, block)
    return written


async def test_the_reader_stops_reading_when_the_audit_falls_behind() -> None:
    # Given a stream on a pipe that nobody consumes
    r, w = os.pipe()
    _nonblocking_writer(w)
    stream = ImportStream(r)
    stream.start()
    line = b"open tcp 104 192.0.2.1 1\n"
    try:
        # When the writer writes until the pipe is full, again and again while the reader
        # takes batches off it, until the queue is full and the reader waits
        written = _fill(w, line)
        for _ in range(2000):
            if stream.full:
                break
            await asyncio.sleep(0.01)
            written += _fill(w, line)
        assert stream.full
        written += _fill(w, line)
        # Then the writer is held back: at most the queue's batches, one batch in the reader's
        # hands and a pipe buffer were taken, never the whole stream
        bound = (QUEUE_BATCHES + 2) * READ_BYTES + 2 * 1024 * 1024
        assert written <= bound
        # And what was queued arrives once consumed
        batch = await stream.get()
        assert batch and batch[0] == ("192.0.2.1", 104)
    finally:
        stream.close()
        os.close(w)
        # the reader ends, and the loop runs what it had handed over, before the pipe closes
        assert await asyncio.to_thread(stream.join, 30)
        await asyncio.sleep(0)
        os.close(r)


class _Batches:
    """A stream stand-in: the batches given, then the end."""

    def __init__(self, *batches: list[tuple[str, int | None]]) -> None:
        self.batches = list(batches)
        self.name = "test input"
        self.closed = False

    async def get(self) -> list[tuple[str, int | None]] | None:
        return self.batches.pop(0) if self.batches else None

    def close(self) -> None:
        self.closed = True

    def take_unread(self) -> list[list[tuple[str, int | None]]]:
        return []

    def summary(self) -> list[str]:
        return []


async def _drain(source: StreamedEndpoints) -> list[tuple[str, int]]:
    out = []
    while (item := await source.next_endpoint()) is not None:
        out.append(item)
    return out


async def test_streamed_entries_obey_exclusions_dedupe_and_the_plan_keeps_them() -> None:
    # Given a plan with one target and an exclusion, scanning port 104
    plan = ScanPlan.build(
        ["192.0.2.1"], ["192.0.2.66"], options=ScanOptions(only=frozenset({"dicom"}), dicom_ports=(104,)),
        streamed=True,
    )  # fmt: skip
    stream = _Batches(
        [("192.0.2.1", 104), ("192.0.2.2", 4242), ("192.0.2.66", 104)],  # target's own, new, excluded
        [("192.0.2.2", 4242), ("192.0.2.3", None), ("pacs.example", 104)],  # repeat, port-less, name
    )
    source = StreamedEndpoints(plan, iter([("192.0.2.1", 104)]), stream, done={("192.0.2.3", 104)})  # type: ignore[arg-type]
    ports: list[int] = []
    source.on_port = ports.append
    # When the lanes drain it
    got = await _drain(source)
    # Then the plan's own endpoint comes first and once, the excluded address, the repeat and
    # the name never, a port-less entry gets the plan's ports (minus what a resume finished)
    assert got == [("192.0.2.1", 104), ("192.0.2.2", 4242)]
    assert 4242 in ports
    # And the plan to store holds every entry that arrived and passed the rules
    assert source.plan().imports == (("192.0.2.1", 104), ("192.0.2.2", 4242), ("192.0.2.3", None))
    assert any("1 excluded" in w for w in source.warnings())
    assert any("host names skipped" in w for w in source.warnings())


async def test_a_stream_beyond_the_scope_limit_is_cut_and_said() -> None:
    # Given a limit of two hosts and three arriving
    plan = ScanPlan.build(
        [], options=ScanOptions(only=frozenset({"dicom"}), dicom_ports=(104,)), streamed=True
    )
    stream = _Batches([("192.0.2.1", None), ("192.0.2.2", None), ("192.0.2.3", None)])
    source = StreamedEndpoints(plan, iter(()), stream, max_hosts=2)  # type: ignore[arg-type]
    # When it is drained, Then the third host is not audited, the stream is closed, and the
    # warning names the flag that lifts the limit
    assert await _drain(source) == [("192.0.2.1", 104), ("192.0.2.2", 104)]
    assert stream.closed
    assert any("--allow-large-scope" in w for w in source.warnings())


async def test_lines_read_before_a_stop_stay_in_the_plan() -> None:
    # Given a streamed scan whose reader queued a line nobody took yet
    r, w = os.pipe()
    stream = ImportStream(r)
    stream.start()
    plan = ScanPlan.build([], options=ScanOptions(only=frozenset({"dicom"})), streamed=True)
    source = StreamedEndpoints(plan, iter(()), stream)
    try:
        os.write(w, b"open tcp 104 192.0.2.1 1\n")
        for _ in range(2000):
            if stream.backlog:
                break
            await asyncio.sleep(0.01)
        assert stream.backlog == 1
        # When the scan stops (Ctrl-C) before a lane takes it
        stream.close()
        await asyncio.sleep(0)  # the close reaches the loop
        # Then the plan the store keeps still holds the line, and no lane gets it any more
        assert source.plan().imports == (("192.0.2.1", 104),)
        assert await stream.get() is None
    finally:
        os.close(w)
        assert await asyncio.to_thread(stream.join, 30)
        await asyncio.sleep(0)
        os.close(r)
