"""Anonymous FTP (RFC 959): LIST directories, read header prefixes with REST + RETR, then abort.

ftplib is used in a worker thread; every socket operation has the options' timeout. Reads close the
data connection after the prefix (RFC 959 §4.1.3: the server answers 426/226), so no more than the
prefix plus one socket buffer crosses the wire.
"""

from __future__ import annotations

import contextlib
import ftplib
import socket

from pacsradar.files.shares.base import Entry, EntryKind, ShareDenied, ShareError

#: Longest listing we accept for one directory.
MAX_LISTING_LINES = 100_000


class FtpClient:
    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        # Auditing anonymous FTP is the point; nothing we send is secret.
        self.ftp = ftplib.FTP(timeout=timeout)  # noqa: S321
        self.ftp.set_debuglevel(0)  # ftplib debug output would print file names
        self.banner = ""

    def connect(self) -> bool:
        """Connect and try an anonymous login (RFC 1635). Returns whether it was accepted."""
        try:
            self.banner = self.ftp.connect(self.host, self.port, timeout=self.timeout)
        except (OSError, EOFError, ftplib.Error) as exc:
            raise ShareError(f"FTP connect failed ({type(exc).__name__})") from exc
        try:
            self.ftp.login("anonymous", "anonymous@")
        except ftplib.error_perm:
            return False
        except (OSError, EOFError, ftplib.Error) as exc:
            raise ShareError(f"FTP login failed ({type(exc).__name__})") from exc
        return True

    def close(self) -> None:
        try:
            self.ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            self.ftp.close()

    def listdir(self, path: str) -> list[Entry]:
        lines: list[str] = []

        def keep(line: str) -> None:
            if len(lines) < MAX_LISTING_LINES:
                lines.append(line)

        try:
            self.ftp.cwd(path)
            self.ftp.retrlines("LIST", keep)
        except ftplib.error_perm as exc:
            raise ShareDenied("FTP listing refused") from exc
        except (OSError, EOFError, ftplib.Error) as exc:
            raise ShareError(f"FTP listing failed ({type(exc).__name__})") from exc
        base = path.rstrip("/")
        entries: list[Entry] = []
        for line in lines:
            parsed = parse_list_line(line)
            if parsed is None:
                continue
            name, kind, size = parsed
            entries.append(Entry(path=f"{base}/{name}", kind=kind, size=size))
        return entries

    def read(self, path: str, offset: int, length: int) -> tuple[bytes, int | None]:
        ftp = self.ftp
        try:
            ftp.voidcmd("TYPE I")
            conn = ftp.transfercmd(f"RETR {path}", rest=offset or None)
        except ftplib.error_perm as exc:
            raise ShareDenied("FTP read refused") from exc
        except (OSError, EOFError, ftplib.Error) as exc:
            raise ShareError(f"FTP read failed ({type(exc).__name__})") from exc
        chunks: list[bytes] = []
        got = 0
        complete = False
        try:
            conn.settimeout(self.timeout)
            while got < length:
                chunk = conn.recv(min(65536, length - got))
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
                got += len(chunk)
        except OSError as exc:
            raise ShareError(f"FTP read failed ({type(exc).__name__})") from exc
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            try:
                ftp.voidresp()  # 226 when complete, 426/451 when we cut the transfer short
            except (ftplib.error_temp, ftplib.error_reply, ftplib.error_perm):
                pass
            except (OSError, EOFError) as exc:
                raise ShareError(f"FTP control connection lost ({type(exc).__name__})") from exc
        data = b"".join(chunks)
        return data, (offset + len(data) if complete else None)


def parse_list_line(line: str) -> tuple[str, EntryKind, int | None] | None:
    """Parse one Unix-style LIST line (the de facto format; RFC 959 leaves it unspecified)."""
    parts = line.split(None, 8)
    if len(parts) < 9 or len(parts[0]) < 10:
        return None
    perms, size_text, name = parts[0], parts[4], parts[8]
    kind: EntryKind
    if perms[0] == "d":
        kind = "dir"
    elif perms[0] == "-":
        kind = "file"
    elif perms[0] == "l":
        kind = "link"
        name = name.split(" -> ", 1)[0]
    else:
        kind = "other"
    if name in (".", "..") or "/" in name or "\x00" in name:
        return None
    size = int(size_text) if size_text.isdigit() else None
    return name, kind, size


__all__ = ["FtpClient", "parse_list_line"]
