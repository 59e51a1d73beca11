"""The store keeps the two-hash patient records of issue 22, and scans stored before them
(a single PatientID (+ issuer) hash per patient) still load and count."""

from __future__ import annotations

import pacsradar_samples as S

from pacsradar.identity import patient_record
from pacsradar.models import Holdings
from pacsradar.store import Store


def _records(*pairs: tuple[str, str | None]) -> tuple[tuple[str, str], ...]:
    out = []
    for pid, issuer in pairs:
        r = patient_record(S.HASHER, pid, issuer)
        assert r is not None
        out.append(r)
    return tuple(out)


def test_patient_records_round_trip_and_link_in_the_stored_headline(store: Store) -> None:
    # Given a DICOM port that sends the issuer and a DICOMweb that leaves it out, same patients
    dicom = Holdings(
        patient_records=_records(("P1", "A"), ("P2", "A")), source="archive", studies=("s1", "s2")
    )
    web = Holdings(patient_records=_records(("P1", None), ("P2", None)), source="web", studies=("s1", "s2"))
    report = S.report(
        "linked",
        [
            S.result(
                "127.0.0.1",
                4242,
                [S.finding(S.DICOM_PHI, "127.0.0.1", 4242, evidence=S.phi_evidence(2, 2, 0)).model_copy(
                    update={"holdings": dicom}
                )],
            ),
            S.result(
                "127.0.0.1",
                8042,
                [S.finding(S.WEB_PHI, "127.0.0.1", 8042, protocol="http", evidence=S.phi_evidence(2, 2, 0))
                 .model_copy(update={"holdings": web})],
                protocol="http",
            ),
        ],
    )  # fmt: skip
    # When it is stored and read back
    store.save_report(report)
    loaded = store.load_report("linked")
    # Then the holdings come back whole, and the stored headline links the two services
    assert {f.endpoint.port: f.holdings for f in loaded.findings} == {4242: dicom, 8042: web}
    (summary,) = store.list_scans()
    assert summary.exposure.patients == 2
    assert summary.exposure.patients_by_link == {"one_issuer": 2}
    assert summary.exposure.patients_by_services == {2: 2}


def test_a_scan_stored_before_issue_22_still_loads_and_counts(store: Store) -> None:
    # Given holdings in the old shape (one opaque hash per patient, no records, no source)
    old = Holdings.model_validate(
        {"patients": ["aa", "bb"], "studies": ["s1"], "study_images": [3], "truncated": False}
    )
    finding = S.finding(S.DICOM_PHI, "127.0.0.1", 4242, evidence=S.phi_evidence(2, 1, 3))
    store.save_report(
        S.report("old", [S.result("127.0.0.1", 4242, [finding.model_copy(update={"holdings": old})])])
    )
    # When it is read back / Then it counts as before, each old hash its own patient
    (summary,) = store.list_scans()
    assert (summary.exposure.patients, summary.exposure.studies, summary.exposure.images) == (2, 1, 3)
    assert summary.exposure.patients_by_link == {"legacy": 2}
