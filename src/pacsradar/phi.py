"""PHI hygiene: keyed hashing of identifiers and neutralising hostile peer text.

Keyed hashes are HMAC-SHA256 (RFC 2104) with a per-scan random key, or a user key when findings
must link across scans. Without the key a hash cannot be reversed by hashing a list of names.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

MAX_PEER_TEXT = 128


class KeyedHasher:
    """HMAC-SHA256 of identifiers; only the first 16 hex digits are kept (64 bits: ample to count)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key else secrets.token_bytes(32)

    @classmethod
    def from_passphrase(cls, passphrase: str) -> KeyedHasher:
        return cls(hashlib.sha256(b"pacsradar-link-key:" + passphrase.encode()).digest())

    def digest(self, value: str | bytes) -> str:
        data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:16]

    def patient(self, patient_id: str | bytes, issuer: str | bytes | None = None) -> str:
        """One patient's key: PatientID, qualified by IssuerOfPatientID when the peer sent one
        (PS3.3 C.7.1.1: the same ID from two issuers is two patients). Backslash separates them:
        it cannot occur in an LO value (PS3.5 Table 6.2-1).

        Holdings for the estate headline use :func:`pacsradar.identity.patient_record` instead
        (two hashes of normalised values, so services that leave the issuer out still link)."""
        pid = patient_id.encode("utf-8", "surrogateescape") if isinstance(patient_id, str) else patient_id
        if issuer:
            pid += b"\\" + (issuer.encode("utf-8", "surrogateescape") if isinstance(issuer, str) else issuer)
        return self.digest(pid)

    def __repr__(self) -> str:  # never show the key
        return "KeyedHasher(<key hidden>)"


def peer_text(value: object, limit: int = MAX_PEER_TEXT) -> str:
    """Bound and de-control a string received from a scanned peer.

    The result is still hostile (it may contain ``<script>``): every renderer escapes it for its
    own format. Here we only drop control and format characters (terminal escapes, bidi overrides)
    and cap the length so a peer cannot flood our output.
    """
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    text = text[: limit * 4]
    cleaned = "".join(
        ch if unicodedata.category(ch)[0] != "C" else "\N{REPLACEMENT CHARACTER}" for ch in text
    ).strip(" \x00")
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"
    return cleaned


def shown_path(path: str | bytes) -> str:
    """A file name as printable text for ``--show-paths``: valid UTF-8 stays as it is, every
    byte that is not UTF-8 becomes ``\\xNN`` and every control character (a newline, a terminal
    escape) ``\\xNN`` too, so any output (JSON, a table, the store) can carry it unchanged."""
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(ch if unicodedata.category(ch)[0] != "C" else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    return f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"


@contextmanager
def quiet_values() -> Iterator[None]:
    """Suppress library warnings while touching peer data values.

    pydicom's validation warnings and log records quote the offending value (a name, a birth
    date); inside this block they are dropped so no value can reach stderr or a log.
    """
    from pydicom import config

    logger = logging.getLogger("pydicom")
    was_disabled = logger.disabled
    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        config.settings.reading_validation_mode = previous
        logger.disabled = was_disabled
