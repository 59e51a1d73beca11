"""What a peer's toolkit *does*, held against the identity it *claims* (issue 22 part 2).

A honeypot can copy any vendor's Implementation Class UID and version name (PS3.7 D.3.3.2) in
one line of configuration; what its Upper Layer does is its toolkit's, and changing that means
changing the toolkit. The traits kept here were measured live against the peers in tests/
(pynetdicom 3.0 SCPs, DCMTK 3.6.7 dcmqrscp and storescp, Orthanc 1.10), on the same default
exchange every endpoint gets, so nothing here sends anything:

* pynetdicom's A-ASSOCIATE-AC: Maximum Length 16382 (``AE.maximum_pdu_size`` default,
  pynetdicom/_config.py), user information sub-items 0x51, 0x52, 0x55 in that order, and the
  presentation context items of the accepted contexts first, then the refused ones, each in
  context id order. DCMTK announces 16384 (``ASC_DEFAULTMAXPDU``); dcmqrscp lists the
  contexts it refused with result 1 first, then the accepted, then those refused with
  result 3; Orthanc (DCMTK inside) lists every context in id order.

Also the synthetic-archive side: UID roots of the Study Instance UIDs a C-FIND returned,
counted by root (never a value), against the roots toolkits generate UIDs under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pacsradar.dicom.fingerprint import identify

#: PS3.7 D.3.3.2 / PS3.8 D.1 sub-item types.
MAX_LENGTH_ITEM = 0x51
IMPLEMENTATION_UID_ITEM = 0x52
VERSION_NAME_ITEM = 0x55

PYNETDICOM_MAX_PDU = 16382
PYNETDICOM_USER_ITEMS = (MAX_LENGTH_ITEM, IMPLEMENTATION_UID_ITEM, VERSION_NAME_ITEM)

#: Products of pacsradar/data/dicom_impl_fingerprints.csv that *are* pynetdicom: a peer naming
#: them and behaving like pynetdicom claims nothing it does not do.
PYNETDICOM_PRODUCTS = frozenset({"pynetdicom", "pydicom"})
UNKNOWN_PRODUCT = "unknown DICOM implementation"

#: UID roots toolkits generate new UIDs under (``generate_uid`` and friends). Counted per root,
#: by label: the values are dropped in the recorder (facts.FindRecorder).
UID_ROOTS: tuple[tuple[str, str], ...] = (
    # pydicom/uid.py PYDICOM_ROOT_UID, the default prefix of generate_uid (pynetdicom uses it)
    ("pydicom", "1.2.826.0.1.3680043.8.498."),
    # DCMTK dcmdata/include/dcmtk/dcmdata/dcuid.h SITE_UID_ROOT
    ("dcmtk", "1.2.276.0.7230010.3."),
)
PYDICOM_ROOT_LABEL = "pydicom"


def uid_root(uid: bytes) -> str | None:
    """The label of the toolkit root ``uid`` lies under, or None. The value is not kept."""
    text = uid.rstrip(b"\x00 ").decode("ascii", "replace")
    for label, root in UID_ROOTS:
        if text.startswith(root):
            return label
    return "other" if text else None


#: Version names (PS3.7 D.3.3.2) that name a server *product*, with the UID root that product is
#: catalogued under (pacsradar/data/dicom_impl_fingerprints.csv). A product built on a toolkit
#: keeps the toolkit's UID and names itself in the version name (Orthanc: DCMTK's UID), so a
#: version name alone proves nothing; the same name on another toolkit's root is a copied
#: identity. Only names of products, never of toolkits others embed (OFFIS_DCMTK_*, PYNETDICOM_*
#: are read by identity-toolkit-mismatch with the maximum PDU instead).
VERSION_NAME_PRODUCTS: tuple[tuple[str, str, str], ...] = (
    # Orthanc links DCMTK and reports DCMTK's UID (csv row "DCMTK-based (DCMTK or Orthanc)")
    ("ORTHANC", "Orthanc", "1.2.276.0.7230010.3."),
    # PixelMed com.pixelmed.dicom.VersionAndConstants (live, tests/web/test_pixelmed.py)
    ("PIXELMEDJAVA", "PixelMed", "1.3.6.1.4.1.5962."),
    # CTN simple_storage (live, tests/dicom/test_more_peers.py)
    ("MIRCTN", "CTN", "1.2.840.113654.2.3.1995."),
)


def version_names_product(version_name: str | None) -> tuple[str, str] | None:
    """(product, its catalogued UID root) a version name names, or None."""
    name = (version_name or "").strip().upper()
    for prefix, product, root in VERSION_NAME_PRODUCTS:
        if name.startswith(prefix):
            return product, root
    return None


def copied_product_name(uid: str | None, version_name: str | None) -> str | None:
    """The product a version name names when the UID lies under another catalogued root."""
    named = version_names_product(version_name)
    if named is None or not uid or uid.startswith(named[1]):
        return None
    if identify(uid, None).product == UNKNOWN_PRODUCT:
        return None  # an uncatalogued root: nothing to hold the name against
    return named[0]


@dataclass(frozen=True)
class Claim:
    """What an AC's implementation identity claims to be (pacsradar.dicom.fingerprint)."""

    product: str
    vendor: bool

    @property
    def known(self) -> bool:
        return self.product != UNKNOWN_PRODUCT

    @property
    def pynetdicom(self) -> bool:
        return self.product in PYNETDICOM_PRODUCTS


def claim(uid: str | None, version_name: str | None) -> Claim:
    """The UID's product, or the product the version name names on another toolkit's root
    (DICOMHawk's customizer writes ``ORTHANC`` on pynetdicom's root): that is the claim."""
    product = identify(uid, version_name).product
    copied = copied_product_name(uid, version_name)
    if copied is not None:
        return Claim(product=copied, vendor=False)
    return Claim(product=product, vendor="(vendor root)" in product)


def accepted_first(order: tuple[tuple[int, int], ...]) -> bool:
    """pynetdicom's context item order: accepted ids ascending, then refused ids ascending."""
    accepted = sorted(cid for cid, result in order if result == 0)
    refused = sorted(cid for cid, result in order if result != 0)
    return bool(order) and [cid for cid, _ in order] == accepted + refused


def behaves_like_pynetdicom(
    max_pdu: int | None, user_items: tuple[int, ...], order: tuple[tuple[int, int], ...]
) -> bool:
    """All three of pynetdicom's A-ASSOCIATE-AC traits (module docstring), not one of them."""
    return max_pdu == PYNETDICOM_MAX_PDU and user_items[:3] == PYNETDICOM_USER_ITEMS and accepted_first(order)


#: Modality tokens (PS3.3 C.7.3.1.1.1 defined terms) as a whole word of a version name: a
#: scanner's identity ("syngo CT VA48A"), not an archive's.
_MODALITY_WORD = re.compile(r"(?:^|[^A-Z0-9])(CT|MR|CR|DX|MG|US|NM|PT|XA|RF)(?:$|[^A-Z0-9])")


def modality_persona(version_name: str | None) -> str | None:
    """The modality a version name names, e.g. "CT" for "syngo CT VA48A"; None for archives."""
    if not version_name:
        return None
    hit = _MODALITY_WORD.search(version_name.upper())
    return hit.group(1) if hit else None


__all__ = [
    "PYDICOM_ROOT_LABEL",
    "PYNETDICOM_MAX_PDU",
    "UID_ROOTS",
    "VERSION_NAME_PRODUCTS",
    "Claim",
    "accepted_first",
    "behaves_like_pynetdicom",
    "claim",
    "copied_product_name",
    "modality_persona",
    "uid_root",
]
