"""Unit tests of the issue 22 tells on hand-built facts: toolkit behaviour against claimed
identity, synthetic-archive UID roots, modality personas, and supporting-only tells."""

from __future__ import annotations

import dataclasses

from pacsradar.dicom.facts import AssociationFacts, DicomFacts, FindFacts
from pacsradar.dicom.honeypot import tells as T
from pacsradar.dicom.honeypot import toolkit
from pacsradar.dicom.honeypot.score import DEFAULT_THRESHOLD, score

#: pynetdicom (measured live): accepted contexts first, then the refused, each in id order
PYNETDICOM_ORDER = (
    *((i, 0) for i in (1, 3, 5, 7, 9, 11, 13, 17, 27)),
    *((i, 3) for i in (15, 19, 21, 23, 25, 29)),
)
#: dcmqrscp: refused with result 1 first, then accepted, then refused with result 3
DCMQRSCP_ORDER = (
    *((i, 1) for i in (17, 19, 21, 23, 25, 27)),
    *((i, 0) for i in range(1, 14, 2)),
    (15, 3),
    (29, 3),
)
#: Orthanc: every context in id order, refused ones in between
ORTHANC_ORDER = tuple((i, 3 if i in (15, 29) else 0) for i in range(1, 30, 2))
GE_UID, GE_VERSION = "1.2.840.113619.6.96", "GE_PACS_REV_24"
SIEMENS_UID, SIEMENS_VERSION = "1.3.12.2.1107.5.2", "syngo CT VA48A"
DCMTK_UID, DCMTK_VERSION = "1.2.276.0.7230010.3.0.3.6.2", "OFFIS_DCMTK_362"
PYNETDICOM_UID = "1.2.826.0.1.3680043.9.3811.3.0.4"


def pynetdicom_ac(uid: str, version: str, **kw: object) -> AssociationFacts:
    """An AC as pynetdicom 3.0 sends it (measured live), with whatever identity it was given."""
    base = AssociationFacts(
        kind="accepted",
        reply_ms=3.0,
        user_items=(0x51, 0x52, 0x55),
        max_pdu=16382,
        implementation_class_uid=uid,
        implementation_version_name=version,
        canary_result=3,
        storage_proposed=6,
        storage_accepted=6,
        context_order=PYNETDICOM_ORDER,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def study_find(roots: tuple[tuple[str, int], ...], matches: int = 5) -> FindFacts:
    return FindFacts(
        purpose="universal", level="STUDY", status=0, matches=matches, level_other=0, study_uid_roots=roots
    )


def no_match() -> FindFacts:
    return FindFacts(purpose="random-patient", level="STUDY", status=0, matches=0)


def hawk(uid: str, version: str) -> DicomFacts:
    """What the current DICOMHawk shows on the default exchange: a faithful pynetdicom SCP with
    a persona, a fake archive under pydicom's root, one record per entity, no random match."""
    return DicomFacts(
        associations=(pynetdicom_ac(uid, version),),
        finds=(study_find((("pydicom", 5),)), no_match()),
    )


def test_a_vendor_identity_on_pynetdicoms_upper_layer_is_a_tell() -> None:
    # Given a GE identity on an AC with all three of pynetdicom's traits
    evidence = T.identity_on_pynetdicom_upper_layer(hawk(GE_UID, GE_VERSION))
    # Then the tell fires and names the claimed product and the traits
    assert evidence is not None and "GE Healthcare" in evidence and "16382" in evidence


def test_pynetdicoms_own_or_an_unknown_identity_is_never_a_toolkit_tell() -> None:
    # Given pynetdicom claiming pynetdicom, and a product with its own uncatalogued UID on it
    own = DicomFacts(associations=(pynetdicom_ac(PYNETDICOM_UID, "PYNETDICOM_304"),))
    custom = DicomFacts(associations=(pynetdicom_ac("1.2.3.4.5.6.7", "HOSPROUTER_1"),))
    # Then neither is a tell: real archives and routers are built on pynetdicom
    assert T.identity_on_pynetdicom_upper_layer(own) is None
    assert T.identity_on_pynetdicom_upper_layer(custom) is None


def test_one_trait_alone_is_not_pynetdicoms_upper_layer() -> None:
    # Given DCMTK's identity with DCMTK's traits, and with only one of pynetdicom's
    dcmtk = pynetdicom_ac(DCMTK_UID, DCMTK_VERSION, max_pdu=16384, context_order=DCMQRSCP_ORDER)
    orthanc = pynetdicom_ac(DCMTK_UID, DCMTK_VERSION, max_pdu=16384, context_order=ORTHANC_ORDER)
    odd_pdu = pynetdicom_ac(DCMTK_UID, DCMTK_VERSION, context_order=DCMQRSCP_ORDER)
    odd_order = pynetdicom_ac(DCMTK_UID, DCMTK_VERSION, context_order=ORTHANC_ORDER)
    odd_items = pynetdicom_ac(DCMTK_UID, DCMTK_VERSION, user_items=(0x51, 0x55, 0x52))
    # Then none of them is a tell
    for ac in (dcmtk, orthanc, odd_pdu, odd_order, odd_items):
        assert T.identity_on_pynetdicom_upper_layer(DicomFacts(associations=(ac,))) is None, ac


def test_pydicom_rooted_archive_behind_a_vendor_is_a_tell_only_for_vendors() -> None:
    # Given the fake archive behind a Siemens identity, and the same UIDs behind DCMTK and pynetdicom
    siemens = hawk(SIEMENS_UID, SIEMENS_VERSION)
    dcmtk = hawk(DCMTK_UID, DCMTK_VERSION)
    own = hawk(PYNETDICOM_UID, "PYNETDICOM_304")
    # Then only the vendor claim makes it a tell (research archives hold pydicom-made studies)
    evidence = T.archive_pydicom_uids_vendor_claim(siemens)
    assert evidence is not None and "5 of 5" in evidence
    assert T.archive_pydicom_uids_vendor_claim(dcmtk) is None
    assert T.archive_pydicom_uids_vendor_claim(own) is None
    # And a vendor archive holding some studies of its own is not one either
    mixed = DicomFacts(
        associations=(pynetdicom_ac(GE_UID, GE_VERSION),),
        finds=(study_find((("other", 3), ("pydicom", 2))),),
    )
    assert T.archive_pydicom_uids_vendor_claim(mixed) is None


def test_a_scanner_persona_serving_records_is_a_weak_tell() -> None:
    # Given a CT version name on a service that answered C-FIND with records, and an archive's
    assert T.modality_persona_archive(hawk(SIEMENS_UID, SIEMENS_VERSION)) is not None
    assert T.modality_persona_archive(hawk(GE_UID, GE_VERSION)) is None
    assert toolkit.modality_persona("OFFIS_DCMTK_367") is None
    assert toolkit.modality_persona("PYNETDICOM_304") is None
    assert toolkit.modality_persona("syngo MR E11") == "MR"


def test_every_dicomhawk_persona_scores_above_the_threshold() -> None:
    # Given the three identities of the current DICOMHawk (default DCMTK, GE PACS, Siemens CT)
    for uid, version in ((DCMTK_UID, DCMTK_VERSION), (GE_UID, GE_VERSION), (SIEMENS_UID, SIEMENS_VERSION)):
        result = score(hawk(uid, version))
        # Then each scores at or above the default threshold, from more than one tell
        assert result.score >= DEFAULT_THRESHOLD and len(result.tells) >= 2, (version, result)


def test_the_random_syntax_tell_alone_never_scores() -> None:
    # Given a real toolkit whose default acceptor accepts any abstract syntax (odil)
    odil = DicomFacts(
        associations=(
            AssociationFacts(
                kind="accepted",
                user_items=(0x51, 0x52, 0x55),
                max_pdu=16384,
                implementation_class_uid="1.2.826.0.1.3680043.9.5560.0.0.1",
                implementation_version_name="ODIL_0_12_0",
                canary_result=0,
                context_order=PYNETDICOM_ORDER,
            ),
        ),
        finds=(study_find((("other", 3),)), no_match()),
    )
    # When scored
    result = score(odil)
    # Then the tell is listed as uncounted, and the score is 0
    assert result.score == 0 and result.tells == ()
    assert [t.id for t in result.uncounted] == ["random-syntax-accepted"]
    # But next to another tell it counts
    both = dataclasses.replace(odil, finds=(study_find(()), dataclasses.replace(no_match(), matches=2)))
    counted = score(both)
    assert {t.id for t in counted.tells} == {"random-syntax-accepted", "find-random-patient-matches"}
    assert counted.score > 45


def test_study_uids_are_counted_by_root_and_never_kept() -> None:
    # Given a universal STUDY query answered with two pydicom-rooted studies and one other
    from pydicom.dataset import Dataset
    from pynetdicom.dsutils import encode

    from pacsradar.dicom import dimse
    from pacsradar.dicom.facts import recorder_for
    from pacsradar.phi import KeyedHasher

    identifier = dimse.encode_identifier([("QueryRetrieveLevel", "STUDY"), ("StudyInstanceUID", "")], True)
    recorder = recorder_for(identifier, "1.2.840.10008.1.2", KeyedHasher())
    uids = ("1.2.826.0.1.3680043.8.498.111", "1.2.826.0.1.3680043.8.498.222", "1.2.40.0.13.9.333")
    for uid in uids:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = uid
        recorder.add(0xFF00, bytes(encode(ds, True, True) or b""))
    recorder.close(0x0000)
    facts = recorder.facts()
    # Then the facts hold the roots' labels and counts, and no UID
    assert facts.study_uid_roots == (("other", 1), ("pydicom", 2))
    assert not any(uid in repr(facts) for uid in uids)


def test_a_products_version_name_on_another_catalogued_root_is_a_copied_identity() -> None:
    # Given DICOMHawk's customizer default: version name ORTHANC on pynetdicom's own UID root
    customizer = hawk("1.2.826.0.1.3680043.9.3811.2.0.1", "ORTHANC")
    result = score(customizer)
    ids = {t.id for t in result.tells}
    # Then the version name is held against the UID root, and the claim against the Upper Layer
    assert {"identity-toolkit-mismatch", "identity-on-pynetdicom-upper-layer"} <= ids
    assert result.score >= DEFAULT_THRESHOLD
    assert toolkit.claim("1.2.826.0.1.3680043.9.3811.2.0.1", "ORTHANC").product == "Orthanc"
    # But a real Orthanc (DCMTK's UID with an ORTHANC version name, DCMTK's Upper Layer) is not
    orthanc = pynetdicom_ac(DCMTK_UID, "ORTHANC_1_12_4", max_pdu=16384, context_order=ORTHANC_ORDER)
    assert score(DicomFacts(associations=(orthanc,))).score == 0
    # And a version name naming a product on an uncatalogued root (a product's own) is no claim
    assert toolkit.copied_product_name("1.2.3.4.5", "ORTHANC") is None
    # Nor a toolkit's name on another root (products embed DCMTK and keep its version name)
    assert toolkit.copied_product_name("1.2.276.0.7238010.5.0.3.5.4", "OFFIS_DCMTK_360") is None
