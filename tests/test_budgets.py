"""Every budget holds (issue 11, point 5): hostile HTTP and TLS-garbage peers on a port that
every auditor wants (``-p PORT``: DICOM, web and shares), scanned by the CLI with its default
timeouts and ``--deadline 10``. The scan must end, with a report and no asyncio noise.

No timed assertions: the bound is the subprocess timeout, computed from the deadline with a
wide margin for start-up on a loaded machine. Before issue 11 the slow body never ended. All
peers are on 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.aiothread import LoopThread
from web.servers import Handler, bomb_body, gzip_bomb, megabyte_headers, raw_server, redirect_loop

DEADLINE = 10.0
#: Generous: the deadline per endpoint (all run at once), CLI start-up, report writing.
BOUND = 3 * DEADLINE + 30
NOISE = (
    "Task exception was never retrieved",
    "Future exception was never retrieved",
    "Task was destroyed but it is pending",
    "Exception in callback",
    "Traceback",
)


async def _read_head(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)


async def slow_listing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An open directory listing whose body arrives at 1 KiB/s and never ends."""
    await _read_head(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
        b"<html><head><title>Index of /</title></head><body><h1>Index of /</h1>"
    )
    while True:
        writer.write(b'<a href="a.dcm">a.dcm</a>' + b" " * 999)
        await writer.drain()
        await asyncio.sleep(1.0)


async def tls_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers anything with a TLS record header and garbage (a broken TLS front end)."""
    while await reader.read(65536):
        writer.write(b"\x16\x03\x03\x00\x40" + os.urandom(64))
        await writer.drain()


async def trickle_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Huge headers, one byte at a time (each byte well inside the read timeout)."""
    await _read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
    while True:
        writer.write(b"a")
        await writer.drain()
        await asyncio.sleep(0.5)


HOSTILE: dict[str, Handler] = {
    "redirect-loop": redirect_loop,
    "gzip-bomb": gzip_bomb,
    "megabyte-headers": megabyte_headers,
    "trickled-headers": trickle_headers,
    "slow-endless-listing": slow_listing,
    "tls-garbage": tls_garbage,
}


class _Peers:
    """Hostile servers on a background loop (the scanner is a subprocess)."""

    def __init__(self) -> None:
        self.loop = LoopThread("budget-peers")
        self.stack = contextlib.AsyncExitStack()

    def start(self, handler: Handler) -> int:
        async def enter() -> int:
            port, _ = await self.stack.enter_async_context(raw_server(handler))
            return int(port)

        return self.loop.run(enter())

    def close(self) -> None:
        self.loop.run(self.stack.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, int]]:
    bomb_body()  # built once, before any scan
    lab = _Peers()
    try:
        yield {kind: lab.start(handler) for kind, handler in HOSTILE.items()}
    finally:
        lab.close()


def _scan(port: int, *only: str, env: dict[str, str] | None = None, cwd: Path) -> tuple[dict, str]:  # type: ignore[type-arg]
    args = ["scan", "127.0.0.1", "-p", str(port), "--no-default-ports", "--deadline", str(DEADLINE),
            "--no-store", "-f", "json"]  # fmt: skip
    for name in only:
        args += ["--only", name]
    proc = subprocess.run(
        [sys.executable, "-m", "pacsradar", *args],
        capture_output=True,
        text=True,
        timeout=BOUND,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        cwd=cwd,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


@pytest.mark.parametrize("only", [(), ("dicom", "share")], ids=["default-audit", "dicom+share"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_peer_costs_at_most_the_deadline(
    peers: dict[str, int], kind: str, only: tuple[str, ...], tmp_path: Path
) -> None:
    # Given a hostile peer on a port every auditor wants
    # When the CLI audits it with --deadline 10 (subprocess timeout: the bound)
    report, stderr = _scan(peers[kind], *only, cwd=tmp_path)
    # Then the scan finished with a report on that endpoint and nothing from asyncio
    assert report["stats"]["endpoints_done"] == 1
    assert not [n for n in NOISE if n in stderr], stderr[-3000:]


def test_all_hostile_peers_at_once_in_asyncio_debug_mode_stay_clean(
    peers: dict[str, int], tmp_path: Path
) -> None:
    # Given every hostile peer, When one scan covers them all with PYTHONASYNCIODEBUG=1
    ports = ",".join(str(p) for p in peers.values())
    proc = subprocess.run(
        [sys.executable, "-m", "pacsradar", "scan", "127.0.0.1", "-p", ports, "--no-default-ports",
         "--deadline", str(DEADLINE), "--no-store", "-f", "json"],
        capture_output=True, text=True, timeout=BOUND * 2, check=False,
        env={**os.environ, "NO_COLOR": "1", "PYTHONASYNCIODEBUG": "1", "PYTHONWARNINGS": "default"},
        cwd=tmp_path,
    )  # fmt: skip
    # Then it ends with a report of every endpoint, and asyncio's debug mode reports nothing
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert json.loads(proc.stdout)["stats"]["endpoints_done"] == len(peers)
    noise = [*NOISE, "ResourceWarning", "was never awaited"]
    assert not [n for n in noise if n in proc.stderr], proc.stderr[-3000:]
