"""The headline figure counts what the evidence proves, never more."""

from __future__ import annotations

import pacsradar_samples as S

from pacsradar.report.exposure import Exposure, exposure_of


def test_counts_are_summed_over_hosts_and_maxed_within_a_host() -> None:
    # Given one host exposing the same archive on DICOM and web, and a second host
    findings = [
        S.finding(S.DICOM_PHI, "127.0.0.1", 4242, evidence=S.phi_evidence(10, 20, 300)),
        S.finding(S.WEB_PHI, "127.0.0.1", 8042, protocol="http", evidence=S.phi_evidence(12, 18, 100)),
        S.finding(
            "SHARE-ANON-DICOM", "127.0.0.5", 445, protocol="smb", evidence={"patients": 1, "images": 7}
        ),
    ]
    # When the exposure is computed
    exposure = exposure_of(findings)
    # Then per host the best proof counts, and hosts add up
    assert exposure == Exposure(patients=13, studies=20, images=307, services=3)
    assert exposure.sentence == "13 patients, 20 studies, 307 images exposed across 3 services"


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
        "1 patient, 1 study, 1 image exposed across 1 service"
    )
