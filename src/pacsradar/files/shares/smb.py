"""SMB2/3 guest or null sessions (smbprotocol, low-level API): enumerate shares over the srvsvc
pipe (MS-SRVS NetrShareEnum, level 1, on DCE/RPC C706), walk disk shares, read header prefixes.

The low-level API is used rather than ``smbclient`` because it keeps no process-wide connection
pool or config, and lets us turn off secure-negotiate validation, which a guest session cannot do
(MS-SMB2 §3.3.5.15.12 needs a signing key). smbprotocol logs file and share names at INFO/DEBUG:
they can carry patient names, so its loggers are capped at WARNING (HACKING rule 1).
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import uuid
from typing import Any

from smbprotocol.connection import Connection
from smbprotocol.exceptions import (
    AccessDenied,
    EndOfFile,
    NoMoreFiles,
    SMBException,
)
from smbprotocol.file_info import FileInformationClass
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from pacsradar.files.shares.base import Entry, EntryKind, ShareDenied, ShareError
from pacsradar.phi import peer_text

for _name in ("smbprotocol", "smbclient", "spnego"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MAX_ENTRIES_PER_DIR = 100_000
MAX_SHARES = 256
MAX_RPC_BYTES = 256 * 1024
_FILE_ATTRIBUTE_DIRECTORY = 0x10
_FILE_ATTRIBUTE_REPARSE_POINT = 0x400
_SRVSVC = uuid.UUID("4b324fc8-1670-01d3-1278-5a47bf6ee188")  # MS-SRVS §1.9, version 3.0
_NDR = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860")  # NDR transfer syntax, version 2
_OPNUM_NETR_SHARE_ENUM = 15
_STYPE_MASK = 0x0FFFFFFF
_STYPE_DISKTREE = 0


class SmbClient:
    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.session_kind = ""
        self.product = ""
        self._conn: Connection | None = None
        self._session: Session | None = None
        self._trees: dict[str, TreeConnect] = {}
        self._lock = threading.Lock()

    # ---- session ------------------------------------------------------------------------

    def connect(self) -> bool:
        """Negotiate, then try a null session and a guest session. Returns whether one worked."""
        for username, kind in (("", "null"), ("guest", "guest")):
            conn = Connection(uuid.uuid4(), self.host, self.port, require_signing=False)
            try:
                conn.connect(timeout=self.timeout)
            except (OSError, SMBException, ValueError) as exc:
                raise ShareError(f"SMB connect failed ({type(exc).__name__})") from exc
            session = Session(
                conn, username=username, password="", require_encryption=False, auth_protocol="ntlm"
            )
            try:
                session.connect()
            except Exception:  # spnego raises its own tree (e.g. no credentials for a null session)
                self._disconnect(conn)
                continue
            self._conn, self._session, self.session_kind = conn, session, kind
            return True
        return False

    def close(self) -> None:
        if self._conn is not None:
            self._disconnect(self._conn)
            self._conn = None

    def abort(self) -> None:
        """Called from a watchdog thread: closing the transport unblocks a stuck receive."""
        self.close()

    @staticmethod
    def _disconnect(conn: Connection) -> None:
        try:
            conn.disconnect(True, timeout=2)
        except Exception:  # best effort on a connection we are dropping
            return

    def _tree(self, share: str) -> TreeConnect:
        tree = self._trees.get(share)
        if tree is None:
            if self._session is None:
                raise ShareError("SMB session not established")
            tree = TreeConnect(self._session, rf"\\{self.host}\{share}")
            try:
                tree.connect(require_secure_negotiate=False)
            except AccessDenied as exc:
                raise ShareDenied("SMB tree connect refused") from exc
            except (SMBException, OSError, ValueError) as exc:
                raise ShareError(f"SMB tree connect failed ({type(exc).__name__})") from exc
            self._trees[share] = tree
        return tree

    # ---- share enumeration (MS-SRVS NetrShareEnum over DCE/RPC) -----------------------------

    def list_shares(self) -> list[str]:
        """Disk shares (not IPC$, printers or hidden admin shares)."""
        tree = self._tree("IPC$")
        pipe = Open(tree, "srvsvc")
        try:
            pipe.create(
                ImpersonationLevel.Impersonation,
                FilePipePrinterAccessMask.FILE_READ_DATA
                | FilePipePrinterAccessMask.FILE_WRITE_DATA
                | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES,
                FileAttributes.FILE_ATTRIBUTE_NORMAL,
                ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
                CreateDisposition.FILE_OPEN,
                CreateOptions.FILE_NON_DIRECTORY_FILE,
            )
            pipe.write(_rpc_pdu(11, _bind_body(), call_id=1), 0)
            ack = pipe.read(0, 4280)
            if len(ack) < 16 or ack[2] != 12:  # bind_ack (C706 §12.6.4.4)
                raise ShareError("srvsvc bind was not acknowledged")
            pipe.write(_rpc_pdu(0, _share_enum_request(self.host), call_id=2), 0)
            stub = self._read_response(pipe)
        except AccessDenied as exc:
            raise ShareDenied("srvsvc refused") from exc
        except (SMBException, OSError, ValueError, struct.error) as exc:
            raise ShareError(f"share enumeration failed ({type(exc).__name__})") from exc
        finally:
            with contextlib.suppress(Exception):  # best effort on a handle we are dropping
                pipe.close()
        shares = parse_share_enum(stub)
        for name, _stype, remark in shares:
            if name.upper() == "IPC$" and remark:
                self.product = peer_text(remark, 64)  # e.g. "IPC Service (Samba 4.17.12-Debian)"
        return [
            name
            for name, stype, _remark in shares
            if stype & _STYPE_MASK == _STYPE_DISKTREE and not stype & 0x80000000
        ][:MAX_SHARES]

    def _read_response(self, pipe: Open) -> bytes:
        stub = b""
        total = 0
        while True:
            pdu: bytes = pipe.read(0, 65536)
            total += len(pdu)
            if total > MAX_RPC_BYTES or len(pdu) < 24:
                raise ShareError("srvsvc response too large or short")
            ptype, flags = pdu[2], pdu[3]
            if ptype != 2:  # response (C706 §12.6.4.10); 3 is a fault
                raise ShareError("srvsvc answered with a fault")
            frag_len = struct.unpack_from("<H", pdu, 8)[0]
            stub += pdu[24:frag_len]
            if flags & 0x02:  # PFC_LAST_FRAG
                return stub

    # ---- ShareClient ----------------------------------------------------------------------

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        share, _, rest = path.strip("\\").partition("\\")
        return share, rest

    def listdir(self, path: str) -> list[Entry]:
        share, rel = self._split(path)
        tree = self._tree(share)
        handle = Open(tree, rel)
        entries: list[Entry] = []
        try:
            handle.create(
                ImpersonationLevel.Impersonation,
                DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.FILE_READ_ATTRIBUTES,
                FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
                ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
                CreateDisposition.FILE_OPEN,
                CreateOptions.FILE_DIRECTORY_FILE,
            )
            while len(entries) < MAX_ENTRIES_PER_DIR:
                try:
                    batch: list[Any] = handle.query_directory(
                        "*", FileInformationClass.FILE_DIRECTORY_INFORMATION
                    )
                except NoMoreFiles:
                    break
                if not batch:
                    break
                for info in batch:
                    entry = self._entry(path, info)
                    if entry is not None:
                        entries.append(entry)
        except AccessDenied as exc:
            raise ShareDenied("SMB listing refused") from exc
        except (SMBException, OSError, ValueError) as exc:
            raise ShareError(f"SMB listing failed ({type(exc).__name__})") from exc
        finally:
            with contextlib.suppress(Exception):  # best effort on a handle we are dropping
                handle.close()
        return entries

    @staticmethod
    def _entry(parent: str, info: Any) -> Entry | None:
        raw: bytes = info["file_name"].get_value()
        name = raw.decode("utf-16-le", "replace")
        if name in (".", "..") or "\\" in name or "/" in name or "\x00" in name:
            return None
        attrs: int = info["file_attributes"].get_value()
        kind: EntryKind
        if attrs & _FILE_ATTRIBUTE_REPARSE_POINT:
            kind = "link"
        elif attrs & _FILE_ATTRIBUTE_DIRECTORY:
            kind = "dir"
        else:
            kind = "file"
        size: int = info["end_of_file"].get_value()
        return Entry(path=f"{parent.rstrip(chr(92))}\\{name}", kind=kind, size=size)

    def read(self, path: str, offset: int, length: int) -> tuple[bytes, int | None]:
        share, rel = self._split(path)
        tree = self._tree(share)
        handle = Open(tree, rel)
        try:
            handle.create(
                ImpersonationLevel.Impersonation,
                FilePipePrinterAccessMask.FILE_READ_DATA | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES,
                FileAttributes.FILE_ATTRIBUTE_NORMAL,
                ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
                CreateDisposition.FILE_OPEN,
                CreateOptions.FILE_NON_DIRECTORY_FILE,
            )
            size: int | None = handle.end_of_file
            chunks: list[bytes] = []
            got = 0
            while got < length:
                want = min(length - got, 65536)
                try:
                    chunk = handle.read(offset + got, want)
                except EndOfFile:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except AccessDenied as exc:
            raise ShareDenied("SMB read refused") from exc
        except (SMBException, OSError, ValueError) as exc:
            raise ShareError(f"SMB read failed ({type(exc).__name__})") from exc
        finally:
            with contextlib.suppress(Exception):  # best effort on a handle we are dropping
                handle.close()
        return b"".join(chunks), size


def _rpc_pdu(ptype: int, body: bytes, *, call_id: int) -> bytes:
    # C706 §12.6.3.1 common header: version 5.0, first+last fragment, little-endian/ASCII/IEEE.
    return (
        struct.pack("<BBBB4sHHI", 5, 0, ptype, 0x03, b"\x10\x00\x00\x00", 16 + len(body), 0, call_id) + body
    )


def _bind_body() -> bytes:
    return (
        struct.pack("<HHIBBH", 4280, 4280, 0, 1, 0, 0)
        + struct.pack("<HBB", 0, 1, 0)
        + _SRVSVC.bytes_le
        + struct.pack("<HH", 3, 0)
        + _NDR.bytes_le
        + struct.pack("<I", 2)
    )


def _ndr_string(text: str) -> bytes:
    chars = text + "\x00"
    data = chars.encode("utf-16-le")
    data += b"\x00" * (-len(data) % 4)
    return struct.pack("<III", len(chars), 0, len(chars)) + data


def _share_enum_request(host: str) -> bytes:
    # NetrShareEnum(ServerName, InfoStruct{Level 1, SHARE_INFO_1_CONTAINER{0, NULL}},
    #               PreferedMaximumLength = MAX, ResumeHandle = &0)  (MS-SRVS §3.1.4.8)
    stub = (
        struct.pack("<I", 0x00020000)
        + _ndr_string(f"\\\\{host}")
        + struct.pack("<IIIII", 1, 1, 0x00020004, 0, 0)
        + struct.pack("<I", 0xFFFFFFFF)
        + struct.pack("<II", 0x00020008, 0)
    )
    return struct.pack("<IHH", len(stub), 0, _OPNUM_NETR_SHARE_ENUM) + stub


def parse_share_enum(stub: bytes) -> list[tuple[str, int, str]]:
    """Parse the NetrShareEnum level-1 response stub (NDR) into (name, type, remark), bounded."""
    pos = 0

    def u32() -> int:
        nonlocal pos
        value: int = struct.unpack_from("<I", stub, pos)[0]
        pos += 4
        return value

    def string() -> str:
        nonlocal pos
        _max, _offset, actual = u32(), u32(), u32()
        if actual > 1024:
            raise ShareError("srvsvc string too long")
        raw = stub[pos : pos + 2 * actual]
        pos += 2 * actual + (-(2 * actual) % 4)
        return raw.decode("utf-16-le", "replace").rstrip("\x00")

    try:
        _level, _switch, container = u32(), u32(), u32()
        if not container:
            return []
        count, buffer = u32(), u32()
        if not buffer or count > MAX_SHARES * 4:
            return []
        if u32() != count:
            raise ShareError("srvsvc array count mismatch")
        fixed = [(u32(), u32(), u32()) for _ in range(count)]
        result: list[tuple[str, int, str]] = []
        for name_ptr, stype, remark_ptr in fixed:
            name = string() if name_ptr else ""
            remark = string() if remark_ptr else ""
            result.append((name, stype, remark))
    except struct.error as exc:
        raise ShareError("srvsvc response truncated") from exc
    return result


__all__ = ["SmbClient", "parse_share_enum"]
