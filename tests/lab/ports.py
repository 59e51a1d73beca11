"""Free loopback ports and readiness polling for the peers the tests start.

HACKING.md rule 4: tests only talk to 127.0.0.0/8. Orthanc and DCMTK bind 0.0.0.0, so each
instance gets its own ports; a port is "free" when 127.0.0.1 can bind it (a 0.0.0.0 listener
on the same port makes that bind fail, so it is detected too).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

__all__ = [
    "PeerStartError",
    "dropping_port",
    "free_port",
    "free_ports",
    "listening_port",
    "port_accepts",
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


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct free ports (held open together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


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
    """Poll until ``host:port`` accepts TCP; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PeerStartError(f"{what} exited with status {proc.returncode} before listening")
        if port_accepts(host, port):
            return
        time.sleep(0.05)
    raise PeerStartError(f"{what} did not accept TCP on {host}:{port} within {timeout:.0f}s")


def wait_until_bound(
    port: int, *, host: str = LOOPBACK, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0
) -> None:
    """Poll until something has bound ``host:port``, without connecting to it (some peers,
    Debian's CTN and pynetdicom's qrscp, mishandle a bare connect-and-close probe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PeerStartError(f"peer exited with status {proc.returncode} before listening")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return
        time.sleep(0.05)
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
