"""The headline counts distinct patients, studies and images across the scan, never more (issue 16)."""

from __future__ import annotations

import pacsradar_samples as S

from pacsradar.models import Holdings
from pacsradar.report.exposure import Exposure, exposure_of


def _holding(patients: range, studies: range, images_each: int) -> Holdings:
    return Holdings(
        patients=tuple(f"p{i}" for i in patients),
        studies=tuple(f"s{i}" for i in studies),
        study_images=tuple(images_each for _ in studies),
    )


def test_the_same_patients_on_four_services_count_once() -> None:
    # Given the same 20 patients / 40 studies / 240 images exposed by four services on two hosts
    same = _holding(range(20), range(40), 6)
    findings = [
        S.finding(S.DICOM_PHI, "127.0.0.1", 4242, evidence=S.phi_evidence(20, 40, 240)),
        S.finding(S.WEB_PHI, "127.0.0.1", 8042, protocol="http", evidence=S.phi_evidence(20, 40, 240)),
        S.finding(S.DICOM_PHI, "127.0.0.2", 11112, evidence=S.phi_evidence(20, 40, 240)),
        S.finding(S.DICOM_PHI, "127.0.0.2", 11113, evidence=S.phi_evidence(20, 40, 240)),
    ]
    findings = [f.model_copy(update={"holdings": same}) for f in findings]
    # When the exposure is computed
    exposure = exposure_of(findings)
    # Then the headline is distinct across services and hosts
    assert (exposure.patients, exposure.studies, exposure.images, exposure.services) == (20, 40, 240, 4)
    assert exposure.sentence == "20 distinct patients, 40 studies, 240 images exposed across 4 services"
    # And the per-service sum is kept, labelled, with how many services expose each patient
    assert (exposure.service_patients, exposure.service_studies, exposure.service_images) == (80, 160, 960)
    assert exposure.patients_by_services == {4: 20}
    assert "20 of the 20 distinct patients are exposed by more than one service (up to 4)" in (
        exposure.per_service_sentence
    )
    assert not exposure.lower_bound


def test_overlapping_archives_union_and_images_take_the_largest_report_per_study() -> None:
    # Given two services sharing half their patients; one reports fewer images for a shared study
    a = Holdings(patients=("p1", "p2"), studies=("s1", "s2"), study_images=(5, 3))
    b = Holdings(patients=("p2", "p3"), studies=("s2", "s3"), study_images=(4, -1))
    findings = [
        S.finding(S.DICOM_PHI, "127.0.0.1", 104, evidence=S.phi_evidence(2, 2, 8)).model_copy(
            update={"holdings": a}
        ),
        S.finding(S.DICOM_PHI, "127.0.0.3", 104, evidence=S.phi_evidence(2, 2, 4)).model_copy(
            update={"holdings": b}
        ),
    ]
    # Then patients and studies are unions, images the best report per distinct study
    exposure = exposure_of(findings)
    assert (exposure.patients, exposure.studies, exposure.images) == (3, 3, 5 + 4)
    assert exposure.patients_by_services == {1: 2, 2: 1}


def test_counts_without_identities_are_a_lower_bound_never_a_sum() -> None:
    # Given one host exposing the same archive on DICOM and web, and a share, none with hashes
    findings = [
        S.finding(S.DICOM_PHI, "127.0.0.1", 4242, evidence=S.phi_evidence(10, 20, 300)),
        S.finding(S.WEB_PHI, "127.0.0.1", 8042, protocol="http", evidence=S.phi_evidence(12, 18, 100)),
        S.finding(
            "SHARE-ANON-DICOM", "127.0.0.5", 445, protocol="smb", evidence={"patients": 1, "images": 7}
        ),
    ]
    # When the exposure is computed
    exposure = exposure_of(findings)
    # Then the headline is the largest proof, said to be "at least"; the sum is per service
    assert (exposure.patients, exposure.studies, exposure.images, exposure.services) == (12, 20, 300, 3)
    assert exposure.lower_bound and exposure.unlinked_services == 3
    assert exposure.sentence.startswith("at least 12 distinct patients")
    assert exposure.service_patients == 23
    assert "3 services reported counts without identities" in exposure.per_service_sentence


def test_missing_boolean_and_foreign_counts_are_zero() -> None:
    # Given counts that are missing, booleans, negative, or on checks that prove no exposure
    findings = [
        S.finding(S.DICOM_PHI, "127.0.0.1", 104, evidence={"patients": True, "studies": -4}),
        S.finding(S.TLS, "127.0.0.2", 104, evidence={"patients": 99}),
    ]
    # Then they count as 0 (the service still counts as exposing)
    assert exposure_of(findings) == Exposure(services=1)
    assert exposure_of([]).sentence == "No patient data proven exposed (see the findings for what is open)"
    assert Exposure(patients=1, studies=1, images=1, services=1).sentence == (
        "1 distinct patient, 1 study, 1 image exposed across 1 service"
    )


def _records(*pairs: tuple[str, str | None]) -> tuple[tuple[str, str], ...]:
    from pacsradar.identity import patient_record
    from pacsradar.phi import KeyedHasher

    hasher = KeyedHasher(b"e" * 32)
    out = []
    for pid, issuer in pairs:
        r = patient_record(hasher, pid, issuer)
        assert r is not None
        out.append(r)
    return tuple(out)


def test_patients_with_and_without_issuer_link_across_services_issue_22() -> None:
    # Given an Orthanc C-FIND that sends IssuerOfPatientID and a dcmqrscp that leaves it out
    with_issuer = Holdings(patient_records=_records(("P1", "A"), ("P2", "A")), studies=("s1", "s2"))
    without = Holdings(patient_records=_records(("P1 ", None), ("P2", None)), studies=("s1", "s2"))
    findings = [
        S.finding(S.DICOM_PHI, "127.0.0.1", 4242, evidence=S.phi_evidence(2, 2, 0)).model_copy(
            update={"holdings": with_issuer}
        ),
        S.finding(S.DICOM_PHI, "127.0.0.1", 11112, evidence=S.phi_evidence(2, 2, 0)).model_copy(
            update={"holdings": without}
        ),
    ]
    # Then each patient counts once, exposed by both, linked by PatientID under its one issuer
    exposure = exposure_of(findings)
    assert exposure.patients == 2 and exposure.patients_by_services == {2: 2}
    assert exposure.patients_by_link == {"one_issuer": 2} and not exposure.lower_bound
    assert exposure.link_sentence.startswith("Patient identity: 2 linked by PatientID where a service left")


def test_one_patient_id_under_two_issuers_stays_two_and_a_bare_one_makes_it_at_least() -> None:
    # Given one PatientID under two issuers on two services, and a third service without issuer
    findings = [
        S.finding(S.DICOM_PHI, "127.0.0.1", port, evidence=S.phi_evidence(1, 0, 0)).model_copy(
            update={"holdings": Holdings(patient_records=_records(("P1", issuer)))}
        )
        for port, issuer in ((104, "A"), (105, "B"), (106, None))
    ]
    # Then two patients, never merged, the bare record not counted, and the figure "at least"
    exposure = exposure_of(findings)
    assert exposure.patients == 2 and exposure.patients_by_link == {"issuer": 2}
    assert exposure.patients_ambiguous == 1 and exposure.lower_bound
    assert exposure.sentence.startswith("at least 2 distinct patients")
    assert "1 PatientID seen without an issuer and under several issuers" in exposure.link_sentence
