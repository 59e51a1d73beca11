"""Name the product behind a DICOM port (PS3.7 D.3.3.2 Implementation Class UID / Version Name).

The table lives in ``pacsradar/data/dicom_impl_fingerprints.csv`` with a source per row and
whether the row was verified live against the real software or taken from documentation. Only
the facts a peer sent are used; a match on an organisation root is 'low' confidence.

Orthanc links DCMTK and answers with DCMTK's UID, so the UID alone says only "DCMTK-based".
:func:`refine` then tells the two apart from how the peer behaved, using behaviour verified live
against Orthanc 1.10.1 and dcmqrscp 3.6.7 (tests/dicom/test_product_tells.py).
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field
from importlib import resources

#: The table row whose match means "DCMTK's network code": DCMTK itself or Orthanc.
DCMTK_BASED = "DCMTK-based (DCMTK or Orthanc)"


@dataclass(frozen=True)
class FingerprintRow:
    product: str
    uid: str
    match: str
    version_from: str
    confidence: str
    evidence: str
    source: str


@dataclass(frozen=True)
class Fingerprint:
    product: str
    version: str | None
    confidence: str
    implementation_class_uid: str | None
    implementation_version_name: str | None
    #: why the product was named beyond the UID table (behavioural tells, a correlated web API)
    basis: tuple[str, ...] = field(default=())
    #: the DCMTK library version inside a DCMTK-based product (Orthanc links DCMTK)
    dcmtk_version: str | None = None

    @property
    def label(self) -> str:
        return f"{self.product} {self.version}" if self.version else self.product


@dataclass(frozen=True)
class DicomTells:
    """Facts about how a peer behaved, none of them PHI (see :func:`refine`)."""

    random_called_aet_accepted: bool = False
    find_accepted: bool = False
    storage_accepted: bool = False
    find_refused_with_abort: bool = False
    #: RetrieveAETitle (0008,0054) in C-FIND responses: None not returned, "" empty, else the value
    retrieve_aet: str | None = None
    #: whether NumberOfStudyRelatedInstances came back at all (None: no responses to judge)
    count_attribute_returned: bool | None = None
    rejected: bool = False


@functools.cache
def load_table() -> tuple[FingerprintRow, ...]:
    text = resources.files("pacsradar.data").joinpath("dicom_impl_fingerprints.csv").read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    rows = tuple(
        FingerprintRow(**{k: (v or "") for k, v in row.items()})
        for row in csv.DictReader(io.StringIO("\n".join(lines)))
    )
    for row in rows:
        if row.evidence not in ("verified live", "from documentation") or not row.source:
            raise ValueError(f"dicom_impl_fingerprints.csv: {row.product}: evidence and source required")
    return rows


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


def refine(fp: Fingerprint, tells: DicomTells) -> Fingerprint:
    """Tell Orthanc from DCMTK's own servers behind the shared DCMTK UID.

    Each tell was observed live (tests/dicom/test_product_tells.py) and follows from the
    products' documented behaviour:

    * Orthanc answers an unknown peer's C-FIND with A-ABORT when DicomAlwaysAllowFind is false
      (its default); DCMTK's dcmqrscp answers with a DIMSE status.
    * Orthanc accepts any called AE title unless DicomCheckCalledAet is set (default false);
      dcmqrscp always checks the called AE against its AETable (PS3.8 §9.3.4 reason 7).
      storescp accepts any called AE too, but negotiates no Query/Retrieve.
    * In C-FIND responses Orthanc returns RetrieveAETitle empty and computes
      NumberOfStudyRelatedInstances; dcmqrscp returns its own AE title there and drops the
      count attribute (PS3.4 C.3.4 makes it optional).
    """
    if fp.product != DCMTK_BASED:
        return fp
    orthanc: list[str] = []
    dcmtk: list[str] = []
    if tells.find_refused_with_abort:
        orthanc.append("C-FIND refused with A-ABORT (Orthanc DicomAlwaysAllowFind false)")
    if tells.random_called_aet_accepted and tells.find_accepted:
        orthanc.append("random called AE title accepted with Query/Retrieve (dcmqrscp always checks it)")
    if tells.retrieve_aet == "" and tells.count_attribute_returned:
        orthanc.append("C-FIND: empty RetrieveAETitle, NumberOfStudyRelatedInstances computed")
    if tells.retrieve_aet and tells.count_attribute_returned is False:
        dcmtk.append("C-FIND: RetrieveAETitle set, NumberOfStudyRelatedInstances not supported (dcmqrscp)")
    if tells.random_called_aet_accepted and not tells.find_accepted and tells.storage_accepted:
        dcmtk.append("storage only, any called AE title (DCMTK storescp)")
    if orthanc and not dcmtk:
        return Fingerprint(
            "Orthanc", None, "medium", fp.implementation_class_uid, fp.implementation_version_name,
            basis=tuple(orthanc), dcmtk_version=fp.version,
        )  # fmt: skip
    if dcmtk and not orthanc:
        return Fingerprint(
            "DCMTK", fp.version, "medium", fp.implementation_class_uid, fp.implementation_version_name,
            basis=tuple(dcmtk), dcmtk_version=fp.version,
        )  # fmt: skip
    return fp


def with_web_identity(fp: Fingerprint, product: str, version: str | None, where: str) -> Fingerprint:
    """The product (and version) a web API on the same host reported for this DICOM port."""
    return Fingerprint(
        product,
        version,
        "high",
        fp.implementation_class_uid,
        fp.implementation_version_name,
        basis=(*fp.basis, where),
        dcmtk_version=fp.dcmtk_version or (fp.version if fp.product == DCMTK_BASED else None),
    )
