"""More real peers with ground truth (issue 16): dcmjs-dimse on Node.js, Debian's CTN, and
Orthanc with and without its Debian DICOMweb plugin. Each fingerprint row they verify is marked
"verified live" in data/dicom_impl_fingerprints.csv.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dicom.helpers import attempt_details, finding, result_for, scan
from lab.ctn import SIMPLE_STORAGE, start_simple_storage
from lab.dimse_node import dcmjs_dimse_available, start_dcmjs_scp
from lab.orthanc import dicomweb_plugin_available, orthanc_available, start_orthanc
from pacsradar.dicom.fingerprint import load_table
from pacsradar.lab.synthetic import make_studies, summarise
from pacsradar.models import Severity
from web.helpers import finding as web_finding
from web.helpers import ids, web_scan


@pytest.fixture(scope="module")
def studies() -> list[Dataset]:
    return make_studies(3, seed=55)


def _row(product: str) -> str:
    return next(r.evidence for r in load_table() if r.product == product)


@pytest.mark.skipif(not dcmjs_dimse_available(), reason="node or tests/lab/node/node_modules missing")
def test_dcmjs_dimse_scp_is_named_and_counted_exactly(tmp_path: Path, studies: list[Dataset]) -> None:
    # Given a dcmjs-dimse SCP (npm, Node.js) serving synthetic studies to anyone
    truth = summarise(studies)
    with start_dcmjs_scp(tmp_path / "node", studies) as peer:
        # When it is audited
        report = scan([("127.0.0.1", peer.port)])
    result = result_for(report, peer.port)
    # Then its own implementation UID names it, and its row says so was verified live
    service = attempt_details(result, "dicom.service")
    assert service["implementation_class_uid"] == "1.2.826.0.1.3680043.10.854"
    assert result.product == "dcmjs-dimse (Node.js) DCMJS-DIMSE-V0.2"
    assert _row("dcmjs-dimse (Node.js)") == "verified live"
    # And the exposure is counted exactly
    phi = finding(result, "DICOM-QUERY-PHI")
    assert phi is not None
    assert (phi.evidence["patients"], phi.evidence["studies"], phi.evidence["images"]) == (
        truth.patients, truth.studies, truth.instances,
    )  # fmt: skip


@pytest.fixture
def ctn_storage(tmp_path: Path) -> Iterator[int]:
    if SIMPLE_STORAGE is None:
        pytest.skip("Debian ctn not installed (scripts/apt-packages.txt)")
    with start_simple_storage(tmp_path) as port:
        yield port


def test_ctn_simple_storage_is_named_and_its_placeholder_answers_are_not_an_exposure(
    ctn_storage: int,
) -> None:
    # Given CTN's simple_storage (Debian ctn): any AE, storage open, and a canned C-FIND answer
    # of four records carrying PatientName and PatientBirthDate but no PatientID or Study UID
    report = scan([("127.0.0.1", ctn_storage)])
    result = result_for(report, ctn_storage)
    # Then it is named CTN from its UID, verified live
    assert result.product == "CTN (MIR Central Test Node) MIRCTN11MAR2003"
    assert _row("CTN (MIR Central Test Node)") == "verified live"
    assert {"DICOM-ANY-AE", "DICOM-STORE-OPEN"} <= {f.check_id for f in result.findings}
    # And its records, without unique keys and the same for a PatientID that cannot exist, are
    # placeholder answers: low severity, nothing counted, never a critical DICOM-QUERY-PHI
    assert finding(result, "DICOM-QUERY-PHI") is None
    placeholder = finding(result, "DICOM-QUERY-PLACEHOLDER")
    assert placeholder is not None and placeholder.severity is Severity.LOW
    evidence = placeholder.evidence
    assert evidence["records"] == 4 and evidence["records_without_unique_key"] == 4
    assert evidence["random_patient_matches"] == 4
    assert (evidence["patients"], evidence["studies"], evidence["images"]) == (0, 0, 0)
    assert placeholder.holdings is None
    assert "4 placeholder records without StudyInstanceUID" in placeholder.summary
    # And no PHI is said to travel in clear text, since none was seen
    plaintext = finding(result, "DICOM-PLAINTEXT")
    assert plaintext is not None and plaintext.severity is Severity.MEDIUM


@pytest.mark.skipif(
    not (orthanc_available() and dicomweb_plugin_available()), reason="Debian orthanc-dicomweb missing"
)
def test_the_dicomweb_plugin_links_orthancs_counts_to_identities(
    tmp_path: Path, studies: list[Dataset]
) -> None:
    # Given the same open Orthanc twice: bare, and with Debian's orthanc-dicomweb plugin
    truth = summarise(studies)
    config = {"RemoteAccessAllowed": True, "AuthenticationEnabled": False}
    seen = {}
    for name, plugins in (("bare", ()), ("dicomweb", ("libOrthancDicomWeb.so",))):
        with start_orthanc(tmp_path / name, config, plugins=plugins) as orthanc:
            orthanc.upload(studies)
            seen[name] = asyncio.run(web_scan(orthanc.http_port))
    # Then both expose the exact counts through /statistics
    for result in seen.values():
        phi = web_finding(result, "WEB-UNAUTH-PHI")
        assert (phi.evidence["patients"], phi.evidence["studies"], phi.evidence["images"]) == (
            truth.patients, truth.studies, truth.instances,
        )  # fmt: skip
    # But only the plugin adds QIDO-RS, whose keyed hashes let the estate count them once
    bare, plugin = (web_finding(seen[n], "WEB-UNAUTH-PHI") for n in ("bare", "dicomweb"))
    assert "DICOMWEB-UNAUTH-QIDO" not in ids(seen["bare"]) and bare.holdings is None
    assert bare.evidence["identities_linked"] is False
    assert "DICOMWEB-UNAUTH-QIDO" in ids(seen["dicomweb"])
    assert plugin.holdings is not None and len(plugin.holdings.patient_records) == truth.patients
    assert plugin.evidence["identities_linked"] is True
