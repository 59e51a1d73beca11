"""Map the A-ASSOCIATE-AC's Implementation Class UID and Version Name (PS3.7 D.3.3.2) to a product.

The table lives in ``pacsradar/data/dicom_impl_fingerprints.csv`` with a source per row. Only
the facts a peer sent are used; a match on an organisation root is 'low' confidence.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class FingerprintRow:
    product: str
    uid: str
    match: str
    version_from: str
    confidence: str
    source: str


@dataclass(frozen=True)
class Fingerprint:
    product: str
    version: str | None
    confidence: str
    implementation_class_uid: str | None
    implementation_version_name: str | None

    @property
    def label(self) -> str:
        return f"{self.product} {self.version}" if self.version else self.product


@functools.cache
def load_table() -> tuple[FingerprintRow, ...]:
    text = resources.files("pacsradar.data").joinpath("dicom_impl_fingerprints.csv").read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return tuple(
        FingerprintRow(**{k: (v or "") for k, v in row.items()})
        for row in csv.DictReader(io.StringIO("\n".join(lines)))
    )


def identify(uid: str | None, version_name: str | None) -> Fingerprint:
    """Best match: exact UIDs before prefixes, longer prefixes before shorter."""
    if uid:
        rows = sorted(load_table(), key=lambda r: (r.match != "exact", -len(r.uid)))
        for row in rows:
            hit = uid == row.uid if row.match == "exact" else uid.startswith(row.uid)
            if not hit:
                continue
            version: str | None = None
            if row.version_from == "uid_suffix" and row.match == "prefix":
                version = uid[len(row.uid) :] or None
            elif row.version_from == "version_name":
                version = version_name or None
            return Fingerprint(row.product, version, row.confidence, uid, version_name)
    return Fingerprint("unknown DICOM implementation", None, "none", uid, version_name)
