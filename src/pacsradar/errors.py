"""The pacsradar exception tree.

Every exception message is written by pacsradar itself: it never embeds a value received from a
scanned peer (which may be PHI or hostile markup), only lengths, counts and our own words.
"""

from __future__ import annotations


class PacsradarError(Exception):
    """Base class of every error pacsradar raises on purpose."""


class UsageError(PacsradarError):
    """The caller asked for something invalid (bad target, bad option)."""


class TargetError(UsageError):
    """A target specification could not be parsed or is out of bounds."""


class ScopeTooLargeError(TargetError):
    """The scope exceeds the safety limit and needs an explicit override."""


class ClusterError(PacsradarError):
    """The Dask cluster (``--workers``/``--scheduler``) could not be started or reached."""


class ScanError(PacsradarError):
    """A problem while scanning one endpoint. Caught by the engine, recorded as an error attempt."""


class NetworkError(ScanError):
    """Transport-level failure."""


class ConnectError(NetworkError):
    """TCP connection could not be established (refused, unreachable)."""


class ConnectTimeout(ConnectError):
    """TCP connect did not finish within the connect timeout."""


class TlsHandshakeError(ConnectError):
    """TCP connected, but the TLS handshake failed (so the port is open).

    ``timed_out`` tells a handshake that never finished from one the peer refused; the
    underlying :class:`ssl.SSLError` or :class:`OSError`, if any, is ``__cause__``.
    """

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class ReadTimeout(NetworkError):
    """The peer did not send the expected bytes within the read timeout."""


class PeerClosed(NetworkError):
    """The peer closed the connection unexpectedly."""


class ProtocolError(ScanError):
    """The peer spoke, but not the protocol we expected or not correctly."""


class NotDicomError(ProtocolError):
    """The peer answered with something that is not a DICOM Upper Layer PDU.

    ``kind`` names what it looked like ("http", "tls", "text-banner", "unknown"); the bytes
    themselves are never kept.
    """

    def __init__(self, message: str, kind: str = "unknown") -> None:
        super().__init__(message)
        self.kind = kind


class PeerAborted(ProtocolError):
    """The peer sent A-ABORT (PS3.8 §7.3): often how a server refuses an operation."""


class SizeLimitError(ProtocolError):
    """The peer announced or sent more data than our bound allows."""


class DeadlineExceeded(ScanError):
    """The per-target deadline elapsed."""


class StoreError(PacsradarError):
    """A problem with the findings store."""
