"""Ports and readiness waits for the peers the tests start, without port races (issue 23).

HACKING.md rule 4: tests only talk to 127.0.0.0/8. Two ways to give a peer a port:

* In-process servers (pynetdicom, asyncio, http.server) bind port 0 and report the port the
  kernel chose: nobody can take it between the choice and the bind.
* Programs that must be told a number (Orthanc, DCMTK, Node, nginx, PostgreSQL...) go through
  :func:`start_on_free_port`: a candidate from :func:`pick_ports` (outside the kernel's
  ephemeral range, so no port-0 bind or outgoing connection elsewhere on the machine is handed
  it meanwhile), and when the program dies (the port was taken after all) or the port answers
  for another process, a fresh candidate. Readiness is the port answering *for that process*
  (:func:`wait_for_port` checks the listener's owner in /proc), never a sleep.

A port that must refuse connections is :func:`closed_port`: bound, never listening, held.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "PeerStartError",
    "closed_port",
    "dropping_port",
    "listening_port",
    "listens_on",
    "one_port",
    "pick_ports",
    "port_accepts",
    "start_on_free_port",
    "wait_for_echo",
    "wait_for_port",
    "wait_until_bound",
]

LOOPBACK = "127.0.0.1"


class PeerStartError(RuntimeError):
    """A peer did not come up (exited, or never answered within the deadline)."""


@contextlib.contextmanager
def listening_port(host: str) -> Iterator[tuple[str, int]]:
    """A listener on ``host`` (an open port): yields (host, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(64)
    try:
        yield host, int(sock.getsockname()[1])
    finally:
        sock.close()


@contextlib.contextmanager
def dropping_port(host: str) -> Iterator[tuple[str, int]]:
    """A listener whose accept queue is full: new SYNs are dropped (a filtered port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(0)
    port = int(sock.getsockname()[1])
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex((host, port))
            fillers.append(filler)
        yield host, port
    finally:
        for filler in fillers:
            filler.close()
        sock.close()


@contextlib.contextmanager
def closed_port(host: str = LOOPBACK, port: int = 0) -> Iterator[int]:
    """A port on ``host`` that refuses connections for the whole block: bound (port 0, or
    ``port`` when a stopped server's port must stay its own), never listening, so a SYN gets
    RST and no other process can bind it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: the stopped server's connections may linger in TIME_WAIT on ``port``.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        yield int(sock.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    return 32768, 60999


_RANDOM = random.Random()  # reseeded per process: two test runs draw different candidates


def pick_ports(count: int = 1, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct candidate ports for a program that must be told a number.

    Drawn below the ephemeral range (and above the well-known DICOM/web ports), so the kernel
    never hands them to a port-0 bind or an outgoing connection; each one is bindable on
    ``host`` right now. Still only a candidate: use it through :func:`start_on_free_port`.
    """
    low = max(10240, _ephemeral_range()[0] - 12000)
    high = _ephemeral_range()[0] - 1
    chosen: list[int] = []
    while len(chosen) < count:
        port = _RANDOM.randint(low, high)
        if port in chosen:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        chosen.append(port)
    return chosen


T = TypeVar("T")


def start_on_free_port(
    start: Callable[[list[int]], T], *, count: int = 1, host: str = LOOPBACK, attempts: int = 8
) -> T:
    """``start(ports)`` on fresh candidates (:func:`pick_ports`) until it does not raise
    :class:`PeerStartError`: a program told a port that was taken meanwhile exits (address in
    use) or never owns the listener, and ``start`` reports that by raising."""
    last: PeerStartError | None = None
    for _ in range(attempts):
        try:
            return start(pick_ports(count, host))
        except PeerStartError as exc:
            last = exc
    assert last is not None
    raise last


@contextlib.contextmanager
def one_port(
    first: Callable[[int], contextlib.AbstractContextManager[Any]],
    *more: Callable[[int], contextlib.AbstractContextManager[Any]],
    attempts: int = 20,
) -> Iterator[tuple[int, list[Any]]]:
    """In-process servers on several addresses sharing one port: ``first(0)`` binds port 0 (its
    value has ``.port``), each of ``more`` is then started on that port; when one cannot bind
    it (OSError: taken on that address), all are stopped and the whole set starts again.
    Yields ``(port, [value of each])``; everything is stopped when the block ends."""
    for attempt in range(attempts):
        with contextlib.ExitStack() as stack:
            values = [stack.enter_context(first(0))]
            port = int(values[0].port)
            try:
                values += [stack.enter_context(start(port)) for start in more]
            except OSError:
                if attempt == attempts - 1:
                    raise
                continue
            yield port, values
            return
    raise PeerStartError("no port was free on every address")  # pragma: no cover (attempts >= 1)


def _listening_inodes(port: int) -> set[str] | None:
    """Socket inodes listening on TCP ``port`` (any address, IPv4 or IPv6); None without /proc."""
    found: set[str] = set()
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            # local_address is ADDR:PORT in hex; state 0A is TCP_LISTEN
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found if readable else None


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(64):
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after the (comm)
        except (OSError, ValueError, IndexError):
            return False
        if pid <= 1:
            return False
    return False


def listens_on(proc: subprocess.Popen[bytes], port: int) -> bool:
    """True when ``proc`` (or a process it started) holds a listening socket on ``port``.

    Without /proc (not Linux) nothing can be checked: True, as the readiness probe was before.
    """
    inodes = _listening_inodes(port)
    if inodes is None:
        return True
    if not inodes:
        return False
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            fds = os.listdir(f"/proc/{entry}/fd")
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") in wanted for fd in fds) and _descends_from(
                int(entry), proc.pid
            ):
                return True
    return False


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` completes."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_for_port(
    port: int,
    *,
    host: str = LOOPBACK,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 30.0,
    what: str = "peer",
) -> None:
    """Poll until ``host:port`` accepts TCP and, given ``proc``, the listener is ``proc``'s;
    fail early if ``proc`` exits (its port was taken: the caller retries on another)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PeerStartError(f"{what} exited with status {proc.returncode} before listening")
        if port_accepts(host, port) and (proc is None or listens_on(proc, port)):
            return
        time.sleep(0.05)  # a polling interval: the outcome is the port answering, not the time
    raise PeerStartError(f"{what} did not accept TCP on {host}:{port} within {timeout:.0f}s")


def wait_until_bound(
    port: int, *, host: str = LOOPBACK, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0
) -> None:
    """Poll until something has bound ``host:port`` (given ``proc``: until ``proc`` listens
    there), without connecting to it (some peers, Debian's CTN and pynetdicom's qrscp,
    mishandle a bare connect-and-close probe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PeerStartError(f"peer exited with status {proc.returncode} before listening")
        if proc is not None:
            if listens_on(proc, port):
                return
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    return
        time.sleep(0.05)  # a polling interval
    raise PeerStartError(f"nothing bound {host}:{port} within {timeout:.0f}s")


def wait_for_echo(
    port: int,
    proc: subprocess.Popen[bytes],
    what: str,
    *,
    host: str = LOOPBACK,
    called_aet: str = "ANY-SCP",
    timeout: float = 30.0,
) -> None:
    """Poll until ``proc``'s DICOM SCP on ``host:port`` completes a C-ECHO association.

    First :func:`wait_until_bound` (no bare TCP connect-and-close: Debian's CTN simple_storage
    exits on one, pynetdicom's qrscp mishandles it), then a real Verification association."""
    from pynetdicom import AE

    ae = AE(ae_title="LABPROBE")
    ae.add_requested_context("1.2.840.10008.1.1")
    ae.acse_timeout = ae.network_timeout = 5
    wait_until_bound(port, host=host, proc=proc, timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerStartError(f"{what} exited with {proc.returncode}")
        assoc = ae.associate(host, port, ae_title=called_aet)
        if assoc.is_established:
            assoc.send_c_echo()
            assoc.release()
            return
        time.sleep(0.2)
    raise PeerStartError(f"{what} did not answer C-ECHO")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``proc`` (and its process group when it leads one), then reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
