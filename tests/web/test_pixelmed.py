"""PixelMed's DicomAndWebStorageServer (Debian libpixelmed-java), DICOM and web (issue 22, part 4).

Its web port lists patients to anyone on ``/?requestType=PATIENTLIST`` and leaves unknown paths
unanswered. pacsradar names it on both ports, counts the listed patients (keyed hashes only,
linked with the DICOM port's), and never reports the web port as 'could not test'.

The server runs in a loopback-only network namespace (lab/pixelmed.py says why), so the scan
runs there too, through the CLI, and the test reads its JSON report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset

from lab.pixelmed import AE_TITLE, pixelmed_skip_reason, start_pixelmed
from pacsradar.dicom.fingerprint import load_table
from pacsradar.lab.synthetic import LabSummary, make_studies, summarise
from pacsradar.web.data import fingerprint_table

SKIP = pixelmed_skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


@pytest.fixture(scope="module")
def studies() -> list[Dataset]:
    return make_studies(3, seed=2207)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, studies: list[Dataset]) -> Iterator[dict[str, Any]]:
    # Given PixelMed with its default AE title, holding synthetic studies, open to anyone
    with start_pixelmed(tmp_path_factory.mktemp("pixelmed")) as peer:
        peer.upload(studies)
        # When both of its ports are audited
        data = peer.scan()
        data["_ports"] = {"dicom": peer.dicom_port, "web": peer.web_port}
        yield data


def _result(report: dict[str, Any], which: str) -> dict[str, Any]:
    port = report["_ports"][which]
    return next(r for r in report["results"] if r["endpoint"]["port"] == port)


def _finding(result: dict[str, Any], check_id: str) -> dict[str, Any]:
    found = [f for f in result["findings"] if f["check_id"] == check_id]
    assert found, f"{check_id} missing; got {sorted(f['check_id'] for f in result['findings'])}"
    return found[0]


def test_the_dicom_port_is_named_pixelmed_and_counted(report: dict[str, Any], studies: list[Dataset]) -> None:
    truth: LabSummary = summarise(studies)
    dicom = _result(report, "dicom")
    # Then the A-ASSOCIATE-AC's implementation UID names PixelMed, a row verified live
    assert dicom["product"] == "PixelMed (DicomAndWebStorageServer) PIXELMEDJAVA001"
    row = next(r for r in load_table() if r.product == "PixelMed (DicomAndWebStorageServer)")
    assert row.evidence == "verified live"
    # And its default AE title is guessed, and C-FIND exposes the exact holdings
    assert _finding(dicom, "DICOM-AE-GUESSABLE")["evidence"]["guessed_called_aet"] == AE_TITLE
    phi = _finding(dicom, "DICOM-QUERY-PHI")["evidence"]
    counted = (phi["patients"], phi["studies"], phi["images"])
    assert counted == (truth.patients, truth.studies, truth.instances)


def test_the_web_port_is_named_and_its_patient_list_counted(
    report: dict[str, Any], studies: list[Dataset]
) -> None:
    truth = summarise(studies)
    web = _result(report, "web")
    # Then the web page names PixelMed (a signature verified live)
    assert web["product"] == "PixelMed"
    assert _finding(web, "WEB-SERVICE-EXPOSED")["severity"] == "info"
    signature = next(s for s in fingerprint_table().signatures if s.product == "PixelMed")
    assert signature.confidence == "verified"
    # And the anonymous patient list is a critical WEB-UNAUTH-PHI with the exact patient count
    listed = _finding(web, "WEB-UNAUTH-PHI")
    assert listed["severity"] == "critical"
    assert listed["evidence"]["patients"] == truth.patients
    assert listed["evidence"]["source"] == "patient-list"
    assert listed["evidence"]["identities_linked"] is True
    # And the estate counts each patient once across the DICOM and the web port
    assert report["exposure"]["patients"] == truth.patients
    assert report["exposure"]["patients_by_services"] == {"2": truth.patients}


def test_a_web_port_that_answers_root_is_never_could_not_test(report: dict[str, Any]) -> None:
    web = _result(report, "web")
    # Then neither the DICOM probe's read timeout on it nor the paths PixelMed leaves
    # unanswered make it 'could not test': those attempts are skipped, with the reason
    assert report["could_not_test"] == []
    assert all(a["status"] != "error" for a in web["attempts"])
    dicom_probe = next(a for a in web["attempts"] if a["check"] == "dicom.service")
    assert dicom_probe["status"] == "skipped" and "the port speaks http" in dicom_probe["reason"]


def test_no_phi_value_is_in_the_report(report: dict[str, Any], studies: list[Dataset]) -> None:
    # Then no name or identifier of a synthetic patient appears anywhere in the report
    text = json.dumps(report)
    for ds in studies:
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID"):
            value = str(ds.get(keyword, ""))
            assert not value or value not in text, keyword
