"""Orthanc and DCMTK share DCMTK's Implementation Class UID; behaviour tells them apart (issue 16).

Every peer here is the real software (Debian orthanc 1.10.1, dcmtk 3.6.7): the tells in
pacsradar.dicom.fingerprint.refine are verified against them, in both directions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dicom.helpers import attempt_details, finding, result_for, scan
from lab.dcmtk import DCMQRSCP, STORESCP, dcmtk_available, start_dcmqrscp
from lab.orthanc import orthanc_available, orthanc_default, orthanc_open_dicom, start_orthanc
from lab.tls import CertPair
from pacsradar.lab.synthetic import make_studies

needs_orthanc = pytest.mark.skipif(not orthanc_available(), reason="Debian orthanc not installed")
needs_dcmtk = pytest.mark.skipif(not dcmtk_available(DCMQRSCP, STORESCP), reason="Debian dcmtk not installed")


@pytest.fixture(scope="module")
def studies() -> list[Dataset]:
    return make_studies(2, seed=3)


@needs_orthanc
@pytest.mark.parametrize("config", [orthanc_open_dicom(), orthanc_default()], ids=["open", "default"])
def test_orthanc_is_named_orthanc_on_its_dicom_port(
    tmp_path: Path, studies: list[Dataset], config: dict[str, object]
) -> None:
    # Given Orthanc, wide open or with its default (C-FIND refused by A-ABORT), holding studies
    with start_orthanc(tmp_path / "o", config, plugins=()) as orthanc:
        orthanc.upload(studies)
        # When only its DICOM port is audited
        report = scan([("127.0.0.1", orthanc.dicom_port)])
    result = result_for(report, orthanc.dicom_port)
    # Then it is Orthanc, not "DCMTK-based", on every finding too
    assert result.product == "Orthanc"
    assert {f.product for f in result.findings} == {"Orthanc"}
    # And without a version on the DICOM side the CVE check says why it could not test
    cve = next(a for a in result.attempts if a.check == "dicom.cve")
    assert cve.status == "skipped" and cve.reason == "version not disclosed on the DICOM port"


@needs_dcmtk
def test_dcmqrscp_is_dcmtk_and_gets_its_cves(tmp_path: Path, studies: list[Dataset]) -> None:
    # Given dcmqrscp 3.6.7 whose AE accepts any calling peer
    with start_dcmqrscp(tmp_path / "qr", studies, called_aet="HOSPQR", allowed_calling=()) as qr:
        report = scan([("127.0.0.1", qr.port)], aet_wordlist=("HOSPQR",))
    result = result_for(report, qr.port)
    # Then it is DCMTK 3.6.7 (its own AE title in RetrieveAETitle, no instance counts)
    assert result.product == "DCMTK 3.6.7"
    cve = finding(result, "DICOM-KNOWN-CVE")
    assert cve is not None
    # And the DICOM side has its CVEs, server-side only, with sources and Debian's backports
    cves = set(cve.evidence["cves"])  # type: ignore[arg-type]
    assert {"CVE-2026-52868", "CVE-2026-44628", "CVE-2024-34509"} <= cves
    assert "CVE-2026-50003" not in cves  # a client-side flaw
    assert all(str(u).startswith("https://") for u in cve.evidence["sources"])  # type: ignore[union-attr]
    assert "possible" in cve.summary and "3.6.7-9~deb12u2" in cve.summary
    assert attempt_details(result, "dicom.cve")["product_basis"]


@needs_dcmtk
def test_storescp_tls_is_dcmtk(tmp_path: Path, tls_cert: CertPair) -> None:
    # Given DCMTK's storescp over TLS (storage only, any called AE)
    from lab.dcmtk import start_storescp_tls

    (tmp_path / "s").mkdir()
    with start_storescp_tls(tmp_path / "s", cert=tls_cert) as peer:
        report = scan([("127.0.0.1", peer.port)])
    # Then it is DCMTK, not Orthanc
    assert result_for(report, peer.port).product == "DCMTK 3.6.7"


@needs_orthanc
def test_orthanc_dicom_port_gets_its_version_from_the_same_hosts_rest_api(
    tmp_path: Path, studies: list[Dataset]
) -> None:
    # Given Orthanc with DICOM and an anonymous REST API (/system reports DicomPort and Version)
    import asyncio

    from dicom.helpers import FAST
    from pacsradar.config import ScanOptions
    from pacsradar.dicom.auditor import DicomAuditor
    from pacsradar.engine import Engine
    from pacsradar.models import Endpoint

    config = {**orthanc_open_dicom(), "RemoteAccessAllowed": True, "AuthenticationEnabled": False}
    with start_orthanc(tmp_path / "o", config, plugins=()) as orthanc:
        options = ScanOptions(
            limits=FAST,
            only=frozenset({"dicom", "web"}),
            dicom_ports=(orthanc.dicom_port,),
            web_ports=(orthanc.http_port,),
        )
        # When only its DICOM port is audited, with web ports in scope
        endpoint = Endpoint(host="127.0.0.1", port=orthanc.dicom_port)
        report = asyncio.run(Engine(options, [DicomAuditor()]).run([endpoint], total=1))
    result = result_for(report, orthanc.dicom_port)
    # Then the DICOM port is "Orthanc 1.10.1", and its DICOM-reachable CVEs are listed
    assert result.product == "Orthanc 1.10.1"
    cve = finding(result, "DICOM-KNOWN-CVE")
    assert cve is not None
    cves = set(cve.evidence["cves"])  # type: ignore[arg-type]
    assert {"CVE-2026-5437", "CVE-2026-5445"} <= cves
    assert "CVE-2026-5440" not in cves  # an HTTP-only flaw belongs to the web finding
    basis = attempt_details(result, "dicom.cve")["product_basis"]
    assert any("REST /system" in b for b in basis)  # type: ignore[union-attr]
