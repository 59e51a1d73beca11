"""Honeypot tells: small pure functions of :class:`~pacsradar.dicom.facts.DicomFacts`.

Each returns the evidence it saw (a short sentence of counts, codes and keywords, never PHI) or
None. Weights and sources live in ``pacsradar/data/honeypot_tells.json``; this module holds only
the logic, keyed by the same ids (a test checks that both sides list the same tells). A
pynetdicom identity alone is never a tell: real archives are built on pynetdicom too.
"""

from __future__ import annotations

from collections.abc import Callable

from pacsradar.dicom.facts import DicomFacts
from pacsradar.dicom.honeypot import toolkit

Tell = Callable[[DicomFacts], str | None]

#: PS3.7 D.3.3.2 sub-item types (PS3.8 D.1 for the Maximum Length).
MAX_LENGTH_ITEM = 0x51
IMPLEMENTATION_UID_ITEM = 0x52
#: dicompot's serviceprovider.go: DefaultMaxPDUSize = 4 << 20
DICOMPOT_MAX_PDU = 4 << 20
#: A real SCP answers an A-ASSOCIATE-RQ in milliseconds (no database work); a reject this late,
#: and alike each time, is a sleep (dicompot sleeps 5 s).
SLOW_REJECT_MS = 2500.0
#: Toolkit identities (pacsradar/data/dicom_impl_fingerprints.csv): UID root, default max PDU,
#: version name prefix.
PYNETDICOM_ROOT = "1.2.826.0.1.3680043.9.3811."
DCMTK_ROOT = "1.2.276.0.7230010.3"
PYNETDICOM_MAX_PDU = 16382
DCMTK_MAX_PDU = 16384
#: PS3.4 C.4.2.1.5: a C-MOVE of a study that does not exist to an AE nobody configured. DCMTK
#: (dcmqrscp) looks the study up first and answers Success with no sub-operations; pynetdicom
#: SCPs answer what their handler says, 0xA801 when it cannot name the destination. A pynetdicom
#: handler that fails before naming one (0xC513-0xC515) is no archive's lookup.
PYNETDICOM_MOVE_HANDLER_FAILED = frozenset({0xC513, 0xC514, 0xC515})
FIND_HANDLER_FAILED = 0xC311
PENDING = (0xFF00, 0xFF01)


def ac_no_implementation_uid(facts: DicomFacts) -> str | None:
    ac = facts.accepted
    if ac is None or IMPLEMENTATION_UID_ITEM in ac.user_items:
        return None
    items = ", ".join(f"0x{t:02X}" for t in ac.user_items) or "none"
    return f"user information sub-items: {items} (no 0x52)"


def ac_dicompot_max_length(facts: DicomFacts) -> str | None:
    ac = facts.accepted
    if ac is None or ac.user_items != (MAX_LENGTH_ITEM,) or ac.max_pdu != DICOMPOT_MAX_PDU:
        return None
    return f"only sub-item 0x51, maximum length {ac.max_pdu:,}"


def random_syntax_accepted(facts: DicomFacts) -> str | None:
    ac = facts.accepted
    if ac is None or ac.canary_result != 0:
        return None
    return "presentation context for a fresh random 2.25 abstract syntax: result 0 (acceptance)"


def find_image_attributes(facts: DicomFacts) -> str | None:
    for find in facts.finds:
        if find.level in ("PATIENT", "STUDY") and find.image_keywords:
            return f"{find.level} level responses carry {', '.join(find.image_keywords[:6])}"
    return None


def find_oversized_response(facts: DicomFacts) -> str | None:
    big = [f for f in facts.finds if f.oversized]
    if not big:
        return None
    largest = max(f.largest_response for f in big)
    size = f"{largest:,} bytes" if largest else "past our 64 KiB bound"
    return f"a C-FIND response identifier of {size}"


def find_random_patient_matches(facts: DicomFacts) -> str | None:
    for find in facts.finds_for("random-patient"):
        if find.matches or find.oversized:
            n = f"{find.matches}" if find.matches else "at least 1"
            return f"{n} match(es) for a random PatientID at {find.level or '?'} level"
    return None


def find_level_not_echoed(facts: DicomFacts) -> str | None:
    for find in facts.finds:
        sampled = find.level_missing + find.level_empty + find.level_other
        bad = find.level_missing + find.level_empty
        if find.matches and sampled and bad == sampled:
            how = "missing" if find.level_missing else "empty"
            return f"QueryRetrieveLevel {how} in {bad} of {sampled} sampled responses"
    return None


def find_fails_storage_open(facts: DicomFacts) -> str | None:
    ac = facts.accepted
    finds = facts.finds
    if ac is None or not finds or ac.storage_proposed == 0 or ac.storage_accepted != ac.storage_proposed:
        return None
    if any(f.status != FIND_HANDLER_FAILED or f.matches for f in finds):
        return None
    return (
        f"{len(finds)} of {len(finds)} C-FIND requests failed with 0xC311; "
        f"{ac.storage_accepted} of {ac.storage_proposed} storage SOP classes accepted"
    )


def reject_protocol_version(facts: DicomFacts) -> str | None:
    hits = [a for a in facts.rejections if a.rj is not None and a.rj[1:] == (2, 2)]
    if not hits:
        return None
    return f"{len(hits)} A-ASSOCIATE-RJ source 2 reason 2 to our protocol version 1"


def reject_fixed_delay(facts: DicomFacts) -> str | None:
    delays = [a.reply_ms for a in facts.rejections if a.reply_ms is not None]
    if not delays or min(delays) < SLOW_REJECT_MS:
        return None
    if max(delays) > 1.25 * min(delays):
        return None  # varying: a slow or loaded link, not a fixed sleep
    return f"{len(delays)} rejection(s), each after {min(delays) / 1000:.1f}-{max(delays) / 1000:.1f} s"


def identity_toolkit_mismatch(facts: DicomFacts) -> str | None:
    ac = facts.accepted
    if ac is None or not ac.implementation_class_uid:
        return None
    uid, version = ac.implementation_class_uid, (ac.implementation_version_name or "").upper()
    if uid.startswith(PYNETDICOM_ROOT):
        if ac.max_pdu == DCMTK_MAX_PDU or version.startswith("OFFIS_DCMTK"):
            return f"pynetdicom's UID root with DCMTK's maximum PDU or version name ({ac.max_pdu})"
    elif uid.startswith(DCMTK_ROOT) and (
        ac.max_pdu == PYNETDICOM_MAX_PDU or version.startswith("PYNETDICOM")
    ):
        return f"DCMTK's UID root with pynetdicom's maximum PDU or version name ({ac.max_pdu})"
    copied = toolkit.copied_product_name(uid, ac.implementation_version_name)
    if copied is not None:
        return f"version name of {copied} on the UID root of {toolkit.claim(uid, None).product}"
    return None


def move_random_destination_odd(facts: DicomFacts) -> str | None:
    """Judged against the fingerprinted toolkit, as DCMTK and pynetdicom answer it."""
    status, ac = facts.move_status, facts.accepted
    if status is None or ac is None:
        return None
    uid = ac.implementation_class_uid or ""
    if uid.startswith(PYNETDICOM_ROOT) and status in PYNETDICOM_MOVE_HANDLER_FAILED:
        return f"pynetdicom identity, C-MOVE of a random study to a random AE answered 0x{status:04X}"
    if not uid and status == 0x0000:
        return "no implementation identity, C-MOVE of a random study to a random AE answered Success"
    return None


def identity_on_pynetdicom_upper_layer(facts: DicomFacts) -> str | None:
    """A known non-pynetdicom identity (a vendor's, DCMTK's ...) on pynetdicom's Upper Layer.

    pynetdicom's own identity on pynetdicom's behaviour, or an identity nobody catalogued, is
    never a tell: real archives and routers are built on pynetdicom.
    """
    ac = facts.accepted
    if ac is None or not ac.implementation_class_uid:
        return None
    said = toolkit.claim(ac.implementation_class_uid, ac.implementation_version_name)
    if not said.known or said.pynetdicom:
        return None
    if not toolkit.behaves_like_pynetdicom(ac.max_pdu, ac.user_items, ac.context_order):
        return None
    return (
        f"identity of {said.product}, A-ASSOCIATE-AC of pynetdicom: maximum length "
        f"{ac.max_pdu}, sub-items 0x51 0x52 0x55, accepted contexts listed before refused ones"
    )


def archive_pydicom_uids_vendor_claim(facts: DicomFacts) -> str | None:
    """Every sampled study UID under pydicom's generate_uid root, from a peer claiming a vendor."""
    ac = facts.accepted
    if ac is None or not ac.implementation_class_uid:
        return None
    said = toolkit.claim(ac.implementation_class_uid, ac.implementation_version_name)
    if not said.vendor:
        return None
    for find in facts.finds:
        roots = dict(find.study_uid_roots)
        total = sum(roots.values())
        pydicom = roots.get(toolkit.PYDICOM_ROOT_LABEL, 0)
        if total and pydicom == total:
            return (
                f"{pydicom} of {total} study UIDs under pydicom's generate_uid root; "
                f"identity of {said.product}"
            )
    return None


def modality_persona_archive(facts: DicomFacts) -> str | None:
    """A scanner's version name on a service that answers C-FIND with records."""
    ac = facts.accepted
    if ac is None:
        return None
    modality = toolkit.modality_persona(ac.implementation_version_name)
    if modality is None:
        return None
    records = max((f.matches for f in facts.finds_for("universal")), default=0)
    if not records:
        return None
    return f"a {modality} scanner's version name; C-FIND answered {records} record(s)"


#: id (as in honeypot_tells.json) -> function.
TELLS: dict[str, Tell] = {
    "ac-no-implementation-uid": ac_no_implementation_uid,
    "ac-dicompot-max-length": ac_dicompot_max_length,
    "random-syntax-accepted": random_syntax_accepted,
    "find-image-attributes": find_image_attributes,
    "find-oversized-response": find_oversized_response,
    "find-random-patient-matches": find_random_patient_matches,
    "find-level-not-echoed": find_level_not_echoed,
    "find-fails-storage-open": find_fails_storage_open,
    "reject-protocol-version": reject_protocol_version,
    "reject-fixed-delay": reject_fixed_delay,
    "identity-toolkit-mismatch": identity_toolkit_mismatch,
    "move-random-destination-odd": move_random_destination_odd,
    "identity-on-pynetdicom-upper-layer": identity_on_pynetdicom_upper_layer,
    "archive-pydicom-uids-vendor-claim": archive_pydicom_uids_vendor_claim,
    "modality-persona-archive": modality_persona_archive,
}
