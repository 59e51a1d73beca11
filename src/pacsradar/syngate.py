"""A TCP gate that holds no descriptor per endpoint: one raw socket, SYN out, SYN-ACK or RST back.

The connect gate (:meth:`pacsradar.net.Net.probe`) holds one socket per endpoint for as long as
its connect takes, and a silent endpoint takes a whole connect timeout. Under an open-file
limit that cannot be raised (a container without ``CAP_SYS_RESOURCE``: 20,000 here), that caps
a process near 6,400 silent endpoints per second at a 3 s timeout (issue 14). This gate sends
each IPv4 endpoint one TCP SYN from a raw socket (as nmap's ``-sS`` and masscan do) and reads
the answers on the same socket:

* SYN-ACK: the port is open; the engine then connects for real and audits it as before (the
  peer's kernel sees our kernel reset the half-open handshake, RFC 9293 §3.10.7.3);
* RST: refused (closed), recorded exactly as a refused connect;
* nothing after a connect timeout: silent (filtered: could not test). The SYN is sent again
  once, after one second, as the kernel's connect does (RFC 6298 §2: initial RTO of 1 s).

A reply counts only if it acknowledges our initial sequence number, which is a keyed hash of the
endpoint (a SYN cookie, as masscan does), so a forged or stray packet cannot mark a port open or
closed. A classic BPF filter on the socket passes only packets to our source port, which is
reserved with a bound socket so the kernel never gives it to a connection of ours.

It needs ``CAP_NET_RAW`` (root) and Linux; ICMP unreachables are not read, so such an endpoint
counts as silent. ``Limits.gate`` chooses: ``"connect"``, ``"syn"``, or ``"auto"`` (SYN only
when the descriptors cannot hold what ``--rate`` needs; see :func:`pacsradar.pools.size_pools`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import errno
import logging
import os
import secrets
import socket
import struct
import sys
from collections.abc import Callable

#: Outcomes handed to the callback.
OPEN, REFUSED, SILENT = 0, 1, 2
#: A SYN not answered after this many seconds is sent once more (RFC 6298 initial RTO).
RESEND_AFTER = 1.0

log = logging.getLogger(__name__)

#: The sender reads the answers itself every 256 SYNs (mask): lanes that send without
#: suspending (a rate's one-second burst, --rate 0) otherwise run tens of thousands of sends
#: between two polls of the loop, and on a network that answers every probe (a dense LAN,
#: loopback) the socket's receive buffer overflows: the kernel drops answers, and open or
#: closed ports would read as filtered. Measured: 18,819 of 65,536 closed ports at 20,000/s.
_DRAIN_EVERY = 0xFF

_SYN, _RST, _ACK = 0x02, 0x04, 0x10
_SO_ATTACH_FILTER = 26  # linux/asm-generic/socket.h
_WINDOW = 64240
#: Bytes read per reply: an IPv4 header (at most 60) and the TCP header's first 14 bytes.
_RECV = 96

Reply = Callable[[str, int, int], None]


def unavailable_reason() -> str | None:
    """Why a SYN gate cannot be opened in this process, or None if it can."""
    if not sys.platform.startswith("linux"):
        return "the SYN gate needs Linux"
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    except PermissionError:
        return "the SYN gate needs CAP_NET_RAW (run as root)"
    except OSError as exc:
        return f"the SYN gate cannot open a raw socket ({os.strerror(exc.errno or 0)})"
    sock.close()
    return None


def _checksum_fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _words(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def tcp_checksum(src: bytes, dst: bytes, segment: bytes) -> int:
    """The TCP checksum over the IPv4 pseudo-header and ``segment`` (RFC 9293 §3.1)."""
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment))
    return ~_checksum_fold(_words(pseudo) + _words(segment)) & 0xFFFF


def bpf_dst_port(port: int) -> bytes:
    """A classic BPF program: accept a TCP segment whose destination port is ``port``.

    The raw socket's data starts at the IPv4 header: ``ldxb 4*([0]&0xf)`` loads its length,
    ``ldh [x+2]`` the TCP destination port, then accept (65535 bytes) or drop.
    """
    insns = (
        (0xB1, 0, 0, 0),  # BPF_LDX | BPF_B | BPF_MSH, k=0
        (0x48, 0, 0, 2),  # BPF_LD | BPF_H | BPF_IND, k=2
        (0x15, 0, 1, port),  # BPF_JMP | BPF_JEQ | BPF_K
        (0x06, 0, 0, 0xFFFF),  # BPF_RET | BPF_K: accept
        (0x06, 0, 0, 0),  # BPF_RET | BPF_K: drop
    )
    return b"".join(struct.pack("HBBI", *i) for i in insns)


def syn_packet(src: bytes, dst: bytes, sport: int, dport: int, seq: int, fixed: int | None = None) -> bytes:
    """An IPv4 header and a 20-byte TCP SYN segment (RFC 9293 §3.1) with its checksum.

    ``fixed`` is the checksum share of the words that do not change per probe (the source port,
    offset and flags, window, protocol, length); a gate computes it once.
    """
    if fixed is None:
        fixed = sport + ((5 << 12) | _SYN) + _WINDOW + socket.IPPROTO_TCP + 20
    s = struct.unpack("!HH", src)
    d = struct.unpack("!HH", dst)
    total = fixed + s[0] + s[1] + d[0] + d[1] + dport + (seq >> 16) + (seq & 0xFFFF)
    check = ~_checksum_fold(total) & 0xFFFF
    # IPv4 header: Linux fills in the total length, the identification and the header checksum
    # for IP_HDRINCL sockets (raw(7)); DF set, TTL 64.
    return struct.pack(
        "!BBHHHBBH4s4sHHIIBBHHH",
        0x45, 0, 40, 0, 0x4000, 64, socket.IPPROTO_TCP, 0, src, dst,
        sport, dport, seq, 0, 5 << 4, _SYN, _WINDOW, check, 0,
    )  # fmt: skip


class SynTemplate:
    """:func:`syn_packet` for one source address and port, prebuilt (issue 26): a probe only
    writes its destination, port, sequence number and checksum into a reused buffer, with the
    checksum's constant share (source, port, flags, window) summed once."""

    __slots__ = ("_base", "_buf")

    def __init__(self, src: bytes, sport: int) -> None:
        self._buf = bytearray(syn_packet(src, b"\0\0\0\0", sport, 0, 0))
        s0, s1 = struct.unpack("!HH", src)
        self._base = sport + ((5 << 12) | _SYN) + _WINDOW + socket.IPPROTO_TCP + 20 + s0 + s1

    def packet(self, dst: bytes, ip: int, dport: int, seq: int) -> bytearray:
        """The SYN to ``dst`` (``ip``: the same address as an int). The buffer is reused:
        send it before asking for the next one."""
        total = self._base + (ip >> 16) + (ip & 0xFFFF) + dport + (seq >> 16) + (seq & 0xFFFF)
        total = (total & 0xFFFF) + (total >> 16)
        total = (total & 0xFFFF) + (total >> 16)
        buf = self._buf
        buf[16:20] = dst
        _PORT_SEQ.pack_into(buf, 22, dport, seq)
        _CHECK.pack_into(buf, 36, ~total & 0xFFFF)
        return buf


_PORT_SEQ = struct.Struct("!HI")  # TCP destination port (offset 2) and sequence number (4)
_CHECK = struct.Struct("!H")  # TCP checksum (offset 16)


class SynGate:
    """One raw socket for a process's SYN probes; replies come back through ``reply``.

    :meth:`send` costs no descriptor, task or future: an endpoint waiting for its answer is a
    dict entry and a deque entry. Open it on the loop that will read it (``add_reader``).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self._secret = secrets.randbits(64)
        self._raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self._reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._route = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # The source port: a bound (never listening) socket keeps the kernel from using it.
            self._reserve.bind(("0.0.0.0", 0))
            self.port = int(self._reserve.getsockname()[1])
            self._raw.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            program = bpf_dst_port(self.port)
            buf = ctypes.create_string_buffer(program, len(program))
            fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buf))
            self._raw.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
            with contextlib.suppress(OSError):
                self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
                self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            self._raw.setblocking(False)
            while True:  # what arrived before the filter was attached
                try:
                    self._raw.recv(_RECV)
                except BlockingIOError:
                    break
        except BaseException:
            self.close()
            raise
        #: (address as int << 16 | port) -> (host, port, cookie, callback)
        self._pending: dict[int, tuple[str, int, int, Reply]] = {}
        #: (due, key, cookie, resend?) in send order; one timeout for all, so due times are sorted
        self._due: collections.deque[tuple[float, int, int, bool]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._sources: dict[int, SynTemplate] = {}
        #: SYNs sent, and sent again for want of an answer (the debug log reports both)
        self.sent = self.resent = 0
        loop.add_reader(self._raw.fileno(), self._ready)
        self.closed = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _source(self, dst: bytes, ip: int) -> SynTemplate:
        """The packet template of the address the kernel routes from towards ``dst`` (cached
        per /24)."""
        net = ip >> 8
        template = self._sources.get(net)
        if template is None:
            self._route.connect((socket.inet_ntoa(dst), 9))
            src = socket.inet_aton(self._route.getsockname()[0])
            template = self._sources[net] = SynTemplate(src, self.port)
        return template

    def send(self, host: str, port: int, reply: Reply) -> str | None:
        """Send the SYN; ``reply(host, port, OPEN | REFUSED | SILENT)`` follows exactly once.

        Returns None when sent, else why not: ``"busy"`` (this endpoint is already waiting, or
        the socket's buffer is full: use the connect gate) or a connect-style error (no route).
        """
        dst = socket.inet_aton(host)
        ip = int.from_bytes(dst, "big")
        key = ip << 16 | port
        if key in self._pending or self.closed:
            return "busy"
        try:
            template = self._source(dst, ip)
        except OSError as exc:
            return f"connect failed ({os.strerror(exc.errno or errno.EHOSTUNREACH)})"
        cookie = hash((self._secret, key)) & 0xFFFFFFFF
        try:
            self._raw.sendto(template.packet(dst, ip, port, cookie), (host, 0))
        except (BlockingIOError, InterruptedError):
            return "busy"
        except OSError as exc:
            if exc.errno in (errno.ENOBUFS, errno.EAGAIN):
                return "busy"
            return f"connect failed ({os.strerror(exc.errno or errno.EHOSTUNREACH)})"
        self._pending[key] = (host, port, cookie, reply)
        self.sent += 1
        if not self.sent & _DRAIN_EVERY:
            self._ready()
        due = self.loop.time() + min(RESEND_AFTER, self.timeout)
        self._due.append((due, key, cookie, self.timeout > RESEND_AFTER))
        if self._timer is None:
            self._timer = self.loop.call_at(due, self._expire)
        return None

    def _ready(self) -> None:
        recv = self._raw.recv
        pending = self._pending
        for _ in range(4096):  # bounded: the loop's other callbacks run between batches
            try:
                data = recv(_RECV)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            ihl = (data[0] & 0x0F) * 4
            if len(data) < ihl + 14 or data[9] != socket.IPPROTO_TCP:
                continue
            sport, dport, _seq, ack = struct.unpack_from("!HHII", data, ihl)
            if dport != self.port:
                continue
            key = int.from_bytes(data[12:16], "big") << 16 | sport
            entry = pending.get(key)
            if entry is None or ack != (entry[2] + 1) & 0xFFFFFFFF:
                continue  # not an answer to a SYN of ours (or a forged one)
            flags = data[ihl + 13]
            if flags & (_SYN | _ACK) == _SYN | _ACK:
                outcome = OPEN
            elif flags & _RST and flags & _ACK:
                outcome = REFUSED
            else:
                continue
            del pending[key]
            entry[3](entry[0], entry[1], outcome)

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time()
        due_queue, pending = self._due, self._pending
        while due_queue:
            due, key, cookie, resend = due_queue[0]
            entry = pending.get(key)
            if entry is None or entry[2] != cookie:
                due_queue.popleft()
                continue
            if due > now:
                self._timer = self.loop.call_at(due, self._expire)
                return
            due_queue.popleft()
            if resend:
                host, port = entry[0], entry[1]
                dst = socket.inet_aton(host)
                self.resent += 1
                if not self.resent & _DRAIN_EVERY:
                    self._ready()
                with contextlib.suppress(OSError):
                    packet = self._source(dst, key >> 16).packet(dst, key >> 16, port, cookie)
                    self._raw.sendto(packet, (host, 0))
                due_queue.append((due - min(RESEND_AFTER, self.timeout) + self.timeout, key, cookie, False))
                continue
            del pending[key]
            entry[3](entry[0], entry[1], SILENT)

    def forget(self, owner: Callable[[Reply], bool]) -> int:
        """Drop the endpoints whose callback ``owner`` claims (a cancelled shard): no reply.
        Returns how many were dropped."""
        keys = [k for k, e in self._pending.items() if owner(e[3])]
        for key in keys:
            del self._pending[key]
        return len(keys)

    def close(self) -> None:
        """Stop reading; pending endpoints get no reply (the caller is being cancelled)."""
        if getattr(self, "closed", True) is False:
            self.closed = True
            log.debug("SYN gate: %d SYNs sent, %d sent again", self.sent, self.resent)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self.loop.is_closed():
                with contextlib.suppress(Exception):
                    self.loop.remove_reader(self._raw.fileno())
            self._pending.clear()
            self._due.clear()
        for sock in (self._raw, self._reserve, self._route):
            sock.close()


__all__ = [
    "OPEN",
    "REFUSED",
    "RESEND_AFTER",
    "SILENT",
    "SynGate",
    "SynTemplate",
    "bpf_dst_port",
    "syn_packet",
    "tcp_checksum",
    "unavailable_reason",
]
