"""A sparse "internet" in two network namespaces the test creates and removes (root only).

BRIEF rule 3: no netem here, so the sparse internet is modelled by routing. The scanner runs in
``NS_SCAN``; everything in 198.18.0.0/15 (RFC 2544 benchmarking range) is routed over a veth
pair (10.255.0.1/30 <-> 10.255.0.2/30) to ``NS_NET``, which has ``net.ipv4.ip_forward=0``:

* an address ``NS_NET`` owns (a /32 on its loopback) with a listener: a server;
* an owned address without a listener: the kernel answers RST at once (closed);
* any other address: the packet is not for ``NS_NET`` and is not forwarded, so it is dropped
  silently, as most of the internet does (filtered: one connect timeout).

No packet leaves the two namespaces: neither has a route anywhere else, and the veth pair is
their only link. Names are unique per run, and :meth:`SparseNet.close` (also on any error and
at interpreter exit) kills the processes started inside and deletes both namespaces.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["SCAN_ADDR", "SPARSE_NET", "SparseNet", "netns_skip_reason"]

SCAN_ADDR = "10.255.0.1"
FAR_ADDR = "10.255.0.2"
SPARSE_NET = "198.18.0.0/15"
IP = shutil.which("ip") or "/usr/sbin/ip"


def netns_skip_reason() -> str | None:
    """Why the namespace lab cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "the sparse-internet lab needs root (network namespaces and veth)"
    if not Path(IP).exists():
        return "iproute2 ('ip') is not installed"
    probe = f"prsprobe{secrets.token_hex(3)}"
    made = subprocess.run([IP, "netns", "add", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return "network namespaces are not available here (ip netns add failed)"
    subprocess.run([IP, "netns", "del", probe], capture_output=True, check=False)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run([IP, *args], capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()[:200]}")


class SparseNet:
    """``NS_SCAN`` and ``NS_NET`` joined by veth; ``owned`` addresses answer, others drop."""

    def __init__(self, owned: Iterable[str], *, tag: str | None = None) -> None:
        suffix = tag or secrets.token_hex(3)
        self.scan_ns = f"prs{suffix}s"
        self.net_ns = f"prs{suffix}n"
        self._veth = (f"prs{suffix}a", f"prs{suffix}b")
        self.owned = tuple(dict.fromkeys(str(ipaddress.IPv4Address(a)) for a in owned))
        net = ipaddress.ip_network(SPARSE_NET)
        for a in self.owned:
            if ipaddress.IPv4Address(a) not in net:
                raise ValueError(f"{a} is outside {SPARSE_NET}: the lab only owns benchmark addresses")
        self._procs: list[subprocess.Popen[bytes]] = []
        self._up = False

    # -- set-up and teardown -------------------------------------------------------------------

    def open(self) -> SparseNet:
        atexit.register(self.close)
        try:
            s, n = self.scan_ns, self.net_ns
            va, vb = self._veth
            _ip("netns", "add", s)
            _ip("netns", "add", n)
            self._up = True
            _ip("link", "add", va, "type", "veth", "peer", "name", vb)
            _ip("link", "set", va, "netns", s)
            _ip("link", "set", vb, "netns", n)
            _ip("-n", s, "link", "set", "lo", "up")
            _ip("-n", n, "link", "set", "lo", "up")
            _ip("-n", s, "addr", "add", f"{SCAN_ADDR}/30", "dev", va)
            _ip("-n", n, "addr", "add", f"{FAR_ADDR}/30", "dev", vb)
            _ip("-n", s, "link", "set", va, "up")
            _ip("-n", n, "link", "set", vb, "up")
            # The only route out of NS_SCAN (besides its own loopback): the benchmark range.
            _ip("-n", s, "route", "add", SPARSE_NET, "via", FAR_ADDR)
            self.sysctl(n, "net.ipv4.ip_forward", "0")
            for address in self.owned:
                _ip("-n", n, "addr", "add", f"{address}/32", "dev", "lo")
        except BaseException:
            self.close()
            raise
        return self

    def sysctl(self, ns: str, key: str, value: str) -> None:
        subprocess.run(
            [IP, "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"], check=True, capture_output=True
        )

    def close(self) -> None:
        for proc in self._procs:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            with contextlib.suppress(OSError):
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        self._procs.clear()
        if self._up:
            for ns in (self.scan_ns, self.net_ns):
                subprocess.run([IP, "netns", "del", ns], capture_output=True, check=False)
            self._up = False
        atexit.unregister(self.close)

    def __enter__(self) -> SparseNet:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- running things inside -------------------------------------------------------------------

    def argv(self, ns: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside namespace ``ns`` (``ip netns exec``)."""
        return [IP, "netns", "exec", ns, *argv]

    def start(
        self, ns: str, argv: Sequence[str], *, ready: bytes | None = None, timeout: float = 60.0
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process in ``ns`` (killed by :meth:`close`); wait for ``ready``."""
        proc = subprocess.Popen(
            self.argv(ns, argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._procs.append(proc)
        if ready is not None:
            assert proc.stdout is not None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{argv[0]} in {ns} exited before it was ready")
                if line.startswith(ready):
                    break
            else:
                raise RuntimeError(f"{argv[0]} in {ns} was not ready within {timeout:g}s")
        return proc

    def start_scps(self, endpoints: Sequence[tuple[str, int]]) -> subprocess.Popen[bytes]:
        """pynetdicom SCPs (any AE title; C-ECHO) on ``endpoints``, inside ``NS_NET``."""
        spec = ",".join(f"{h}:{p}" for h, p in endpoints)
        script = Path(__file__).with_name("netns_scp.py")
        return self.start(self.net_ns, [sys.executable, str(script), spec], ready=b"READY")
