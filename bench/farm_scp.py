"""A tiny asyncio DICOM SCP that serves many loopback addresses from one process (bench only).

Why not pynetdicom ``AE.start_server``: each server is a thread plus two threads per
association, with polling loops; 1,000 of them on a 2-core machine would make the *servers* the
bottleneck of a scanner benchmark. This SCP costs a few microseconds per PDU instead.

What it speaks (enough for nmap dicom-ping, echoscu, pynetdicom and pacsradar's default audit):

* A-ASSOCIATE-RQ (PS3.8 §9.3.2) -> A-ASSOCIATE-AC (§9.3.3) accepting Verification and the
  Patient/Study Root C-FIND models with Implicit VR Little Endian, refusing every other
  presentation context with result 3 (abstract syntax not supported). Any AE title is accepted.
* P-DATA-TF (§9.3.5): C-ECHO-RQ -> C-ECHO-RSP 0x0000 (PS3.7 §9.3.5); C-FIND-RQ -> a few
  pending responses (0xFF00) with synthetic STUDY records, then 0x0000 (PS3.4 C.4.1);
  C-CANCEL-RQ is ignored (the final response comes anyway).
* A-RELEASE-RQ -> A-RELEASE-RP (§9.3.6, §9.3.7); A-ABORT -> close.

Run as a process: ``python bench/farm_scp.py --first 127.20.0.1 --count 250 [--step 1] --port 11112``;
it prints ``READY <n>`` once every address is bound and exits on SIGTERM/SIGINT or when its
stdin closes (so a crashed parent never leaves it behind).
All records are invented (no real patient data); the bench never prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import struct
import sys
from typing import ClassVar

VERIFICATION = "1.2.840.10008.1.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
SUPPORTED = frozenset({VERIFICATION, PATIENT_ROOT_FIND, STUDY_ROOT_FIND})
IMPL_UID = "1.2.826.0.1.3680043.10.1337.99"  # bench-only implementation class UID
IMPL_VERSION = "PRBENCH_FARM"
MAX_PDU = 16384
MAX_RQ = 64 * 1024

_HDR = struct.Struct(">BBL")


def _ui(uid: str) -> bytes:
    raw = uid.encode()
    return raw + b"\0" if len(raw) % 2 else raw


def _elem(element: int, value: bytes) -> bytes:
    # Implicit VR Little Endian, group 0000 (PS3.7 §6.3.1): tag, 4-byte length, value.
    return struct.pack("<HHL", 0x0000, element, len(value)) + value


def _command(sop_class: str, field: int, responding_to: int, has_dataset: bool, status: int) -> bytes:
    body = (
        _elem(0x0002, _ui(sop_class))
        + _elem(0x0100, struct.pack("<H", field))
        + _elem(0x0120, struct.pack("<H", responding_to))
        + _elem(0x0800, struct.pack("<H", 0x0000 if has_dataset else 0x0101))
        + _elem(0x0900, struct.pack("<H", status))
    )
    return _elem(0x0000, struct.pack("<L", len(body))) + body


def _pdata(context_id: int, control: int, fragment: bytes) -> bytes:
    item = struct.pack(">LBB", len(fragment) + 2, context_id, control) + fragment
    return _HDR.pack(0x04, 0, len(item)) + item


def _records(n: int) -> list[bytes]:
    """A few synthetic study-level identifiers, encoded once (pydicom, Implicit VR LE)."""
    from pydicom.dataset import Dataset
    from pynetdicom.dsutils import encode

    out: list[bytes] = []
    for i in range(n):
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.PatientName = f"FARM^SYNTHETIC{i}"
        ds.PatientID = f"FARM{i:04d}"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyDate = f"20{10 + i:02d}0101"
        ds.StudyInstanceUID = f"2.25.{1000 + i}"
        ds.AccessionNumber = f"ACC{i}"
        ds.ModalitiesInStudy = "CT"
        ds.NumberOfStudyRelatedInstances = "3"
        raw = encode(ds, True, True)  # implicit VR, little endian
        assert raw is not None
        out.append(raw)
    return out


class ScpProtocol(asyncio.Protocol):
    records: ClassVar[list[bytes]] = []

    def __init__(self) -> None:
        self.buf = bytearray()
        self.contexts: dict[int, str] = {}
        self.command = bytearray()
        self.dataset = bytearray()
        self.command_done = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 6:
            pdu_type, _r, length = _HDR.unpack_from(self.buf)
            if length > MAX_RQ:
                self._close()
                return
            if len(self.buf) < 6 + length:
                return
            body = bytes(self.buf[6 : 6 + length])
            del self.buf[: 6 + length]
            if pdu_type == 0x01:
                self._associate(body)
            elif pdu_type == 0x04:
                self._pdata(body)
            elif pdu_type == 0x05:
                self._send(_HDR.pack(0x06, 0, 4) + b"\0\0\0\0")
                self._close()
                return
            else:  # abort, or anything unexpected
                self._close()
                return

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- A-ASSOCIATE ---------------------------------------------------------------------
    def _associate(self, body: bytes) -> None:
        if len(body) < 68:
            self._close()
            return
        called, calling = body[4:20], body[20:36]
        pos = 68
        results: list[bytes] = []
        while pos + 4 <= len(body):
            item_type = body[pos]
            ilen = struct.unpack_from(">H", body, pos + 2)[0]
            item = body[pos + 4 : pos + 4 + ilen]
            pos += 4 + ilen
            if item_type != 0x20 or len(item) < 4:
                continue
            cid = item[0]
            abstract, syntaxes = "", []
            sub = 4
            while sub + 4 <= len(item):
                stype = item[sub]
                slen = struct.unpack_from(">H", item, sub + 2)[0]
                value = item[sub + 4 : sub + 4 + slen].rstrip(b"\0 ").decode("ascii", "replace")
                sub += 4 + slen
                if stype == 0x30:
                    abstract = value
                elif stype == 0x40:
                    syntaxes.append(value)
            ok = abstract in SUPPORTED and IMPLICIT_LE in syntaxes
            if ok:
                self.contexts[cid] = abstract
            ts = _ui(IMPLICIT_LE) if ok else _ui(syntaxes[0] if syntaxes else IMPLICIT_LE)
            sub_item = struct.pack(">BBH", 0x40, 0, len(ts)) + ts
            results.append(
                struct.pack(">BBHBBBB", 0x21, 0, 4 + len(sub_item), cid, 0, 0 if ok else 3, 0) + sub_item
            )
        app = _ui(APPLICATION_CONTEXT)
        impl_uid, impl_ver = _ui(IMPL_UID), IMPL_VERSION.encode()
        user = (
            struct.pack(">BBHL", 0x51, 0, 4, MAX_PDU)
            + struct.pack(">BBH", 0x52, 0, len(impl_uid))
            + impl_uid
            + struct.pack(">BBH", 0x55, 0, len(impl_ver))
            + impl_ver
        )
        items = (
            struct.pack(">BBH", 0x10, 0, len(app))
            + app
            + b"".join(results)
            + struct.pack(">BBH", 0x50, 0, len(user))
            + user
        )
        head = struct.pack(">HH", 1, 0) + called + calling + b"\0" * 32
        pdu = head + items
        self._send(_HDR.pack(0x02, 0, len(pdu)) + pdu)

    # -- DIMSE ---------------------------------------------------------------------------
    def _pdata(self, body: bytes) -> None:
        pos = 0
        while pos + 6 <= len(body):
            ilen = struct.unpack_from(">L", body, pos)[0]
            cid, control = body[pos + 4], body[pos + 5]
            fragment = body[pos + 6 : pos + 4 + ilen]
            pos += 4 + ilen
            if control & 0x01:
                self.command += fragment
                if control & 0x02:
                    self.command_done = True
                    fields = _parse_command(bytes(self.command))
                    if fields.get(0x0800, 0x0101) == 0x0101:
                        self._dimse(cid, fields)
            else:
                self.dataset += fragment
                if control & 0x02 and self.command_done:
                    self._dimse(cid, _parse_command(bytes(self.command)))

    def _dimse(self, cid: int, fields: dict[int, int | str]) -> None:
        self.command.clear()
        self.dataset.clear()
        self.command_done = False
        field = fields.get(0x0100)
        msg_id = int(fields.get(0x0110, 1))
        sop = self.contexts.get(cid, str(fields.get(0x0002, VERIFICATION)))
        if field == 0x0030:  # C-ECHO-RQ
            self._send(_pdata(cid, 0x03, _command(sop, 0x8030, msg_id, False, 0x0000)))
        elif field == 0x0020:  # C-FIND-RQ
            out = []
            for record in self.records:
                out.append(_pdata(cid, 0x03, _command(sop, 0x8020, msg_id, True, 0xFF00)))
                out.append(_pdata(cid, 0x02, record))
            out.append(_pdata(cid, 0x03, _command(sop, 0x8020, msg_id, False, 0x0000)))
            self._send(b"".join(out))
        elif field == 0x0FFF:  # C-CANCEL-RQ: the final response was already sent
            return
        else:
            self._send(_HDR.pack(0x07, 0, 4) + b"\0\0\x02\x00")  # A-ABORT, provider
            self._close()


def _parse_command(raw: bytes) -> dict[int, int | str]:
    fields: dict[int, int | str] = {}
    pos = 0
    while pos + 8 <= len(raw):
        _group, element, length = struct.unpack_from("<HHL", raw, pos)
        value = raw[pos + 8 : pos + 8 + length]
        pos += 8 + length
        if element in (0x0100, 0x0110, 0x0800) and length == 2:
            fields[element] = struct.unpack("<H", value)[0]
        elif element == 0x0002:
            fields[element] = value.rstrip(b"\0 ").decode("ascii", "replace")
    return fields


def addresses(first: str, count: int, step: int = 1) -> list[str]:
    start = int(ipaddress.IPv4Address(first))
    out = [str(ipaddress.IPv4Address(start + i * step)) for i in range(count)]
    # Loopback, or the RFC 2544 benchmarking range that bench_scale.py owns inside its own
    # network namespace (tests/lab/netns.py): never an address of a real network.
    bench_range = ipaddress.ip_network("198.18.0.0/15")
    for a in out:
        ip = ipaddress.IPv4Address(a)
        if not (ip.is_loopback or ip in bench_range):
            raise SystemExit(f"refusing non-loopback address {a}")
    return out


async def serve(hosts: list[str], port: int, records: int) -> None:
    ScpProtocol.records = _records(records)
    loop = asyncio.get_running_loop()
    servers = []
    for host in hosts:
        servers.append(await loop.create_server(ScpProtocol, host, port, backlog=128))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Parent gone (stdin EOF) -> stop too.
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 1) else None)
    print(f"READY {len(servers)}", flush=True)
    await stop.wait()
    for s in servers:
        s.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--first", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--port", type=int, default=11112)
    ap.add_argument("--step", type=int, default=1, help="address increment between SCPs")
    ap.add_argument("--records", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(serve(addresses(args.first, args.count, args.step), args.port, args.records))


if __name__ == "__main__":
    main()
