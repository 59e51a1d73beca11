"""Fix first: findings folded into actions (remediation theme x product), ranked by patients protected."""

from __future__ import annotations

from pacsradar.models import Endpoint, EvidenceValue, Finding, Holdings, Severity
from pacsradar.registry import all_specs
from pacsradar.report.fixfirst import action_of, fix_first, product_name


def _f(
    check: str,
    host: str,
    port: int = 4242,
    *,
    product: str | None = "Orthanc 1.12.3",
    protocol: str = "dicom",
    patients: tuple[str, ...] | None = None,
    evidence: dict[str, EvidenceValue] | None = None,
    severity: Severity | None = None,
) -> Finding:
    spec = all_specs()[check]
    holdings = Holdings(patients=patients) if patients is not None else None
    return spec.finding(
        Endpoint(host=host, port=port, protocol=protocol),  # type: ignore[arg-type]
        summary="s",
        evidence=evidence,
        product=product,
        holdings=holdings,
        severity=severity,
    )


def test_checks_sharing_a_remediation_on_one_product_are_one_action() -> None:
    # Given two Orthanc servers answering C-FIND, C-MOVE and any AE title, the same 20 patients on both
    pts = tuple(f"h{i}" for i in range(20))
    findings = [
        _f(check, host, patients=pts if check == "DICOM-QUERY-PHI" else None)
        for host in ("192.0.2.1", "192.0.2.2")
        for check in ("DICOM-QUERY-PHI", "DICOM-RETRIEVE-OPEN", "DICOM-ANY-AE")
    ]
    # When folded
    actions = fix_first(findings)
    # Then one action covers the six findings, and the shared patients count once
    assert len(actions) == 1
    a = actions[0]
    assert a.headline == "Restrict DICOM associations to registered peers on 2 Orthanc servers: 20 patients"
    assert a.findings == 6
    assert a.services == ("192.0.2.1:4242", "192.0.2.2:4242")
    assert a.check_ids == ("DICOM-QUERY-PHI", "DICOM-RETRIEVE-OPEN", "DICOM-ANY-AE")
    # And its steps are the product-aware remediation of each check, once each
    assert len(a.steps) == 3
    assert all("Orthanc" in s.text for s in a.steps)
    assert set(action_of(actions).values()) == {1}


def test_actions_rank_by_distinct_patients_then_severity() -> None:
    # Given a DCMTK server exposing 3 patients, an Orthanc exposing 8 on the web, and a weak TLS set-up
    findings = [
        _f("DICOM-QUERY-PHI", "192.0.2.3", 11112, product="DCMTK 3.6.7", patients=("a", "b", "c")),
        _f("WEB-UNAUTH-PHI", "192.0.2.1", 8042, protocol="http", patients=tuple("abcdefgh")),
        _f("TLS-WEAK", "192.0.2.4", 2762, product=None),
        _f("DICOM-PLAINTEXT", "192.0.2.1", 8042, protocol="http"),
    ]
    # When ranked
    actions = fix_first(findings)
    # Then the web authentication (8 patients) comes first, then DCMTK (3), then what gates no data
    assert [a.headline for a in actions[:2]] == [
        "Require authentication on 1 Orthanc server: 8 patients",
        "Restrict DICOM associations to registered peers on 1 DCMTK server: 3 patients",
    ]
    # And encrypting a link protects no patient by itself: it says what the service holds instead
    encrypt = next(a for a in actions if a.theme == "encrypt")
    assert encrypt.patients == 0
    assert encrypt.protects == "medium, 1 finding (on services holding 8 patients)"
    assert actions[-1].headline == "Harden the TLS set-up on 1 server: medium, 1 finding"


def test_counts_without_hashes_are_a_lower_bound() -> None:
    # Given an exposure finding re-imported from JSON (counts, no hashes)
    findings = [
        _f("SHARE-ANON-DICOM", "192.0.2.9", 21, protocol="ftp", product="vsftpd 3", evidence={"patients": 4})
    ]
    # Then the action protects "at least" that many
    assert fix_first(findings)[0].headline == "Close anonymous shares on 1 vsftpd server: at least 4 patients"


def test_info_findings_and_suspected_honeypots_are_not_actions() -> None:
    findings = [
        _f("DICOM-SERVICE-EXPOSED", "192.0.2.1"),
        _f("DICOM-ANY-AE", "192.0.2.2", evidence={"suspected_honeypot": True}),
    ]
    assert fix_first(findings) == ()


def test_product_names_come_from_hostile_text_by_substring_only() -> None:
    assert product_name('pynetdicom 2.0 "><script>') == "pynetdicom"
    assert product_name("dcm4chee-arc 5.31") == "dcm4chee"
    assert product_name("<b>unknown</b>") is None
    assert product_name(None) is None
