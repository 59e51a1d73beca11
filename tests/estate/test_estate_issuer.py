"""Issue 22 part 1: the same patients, loaded from files that carry IssuerOfPatientID, on
Orthanc (DICOM and its own DICOMweb), DCMTK's dcmqrscp and pynetdicom's qrscp. Some services
return the issuer and some leave it out (dcmqrscp's index and qrscp's answers carry only the
keys they keep); the headline must still be the distinct truth, with the link rules said.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from estate.helpers import NEEDS_PEERS, OPEN_ORTHANC, OTHER, cli
from lab.dcmtk import start_dcmqrscp
from lab.orthanc import start_orthanc
from lab.ports import LOOPBACK
from lab.qrscp import start_qrscp
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies, summarise

pytestmark = NEEDS_PEERS


@pytest.fixture(scope="module")
def studies() -> list[Dataset]:
    out = make_studies(5, seed=2201)
    for ds in out:
        # A synthetic assigning authority (PS3.3 C.7.1.1), the same for every patient
        ds.IssuerOfPatientID = "LABHOSP"
    return out


def _scan(ports: list[int], *hosts: str) -> dict[str, object]:
    scan = cli(
        "scan", LOOPBACK, *hosts, "--no-default-ports", "-p", ",".join(map(str, ports)), "-f", "jsonl",
        "--connect-timeout", "2", "--read-timeout", "5",
    )  # fmt: skip
    assert scan.returncode in (0, 1), scan.stderr
    summary: dict[str, object] = json.loads(scan.stdout.strip().splitlines()[-1])
    return summary


def test_same_patients_with_issuers_on_four_implementations_are_counted_once(
    tmp_path: Path, studies: list[Dataset]
) -> None:
    truth = summarise(studies)
    # Given the same patients (issuer set) in Orthanc (DICOM + DICOMweb), dcmqrscp and qrscp
    with (
        start_orthanc(tmp_path / "orthanc", OPEN_ORTHANC) as orthanc,
        start_dcmqrscp(tmp_path / "qr", studies, called_aet="DCMQRSCP", allowed_calling=()) as qr,
        start_qrscp(tmp_path / "qrscp", studies) as pyqr,
    ):
        orthanc.upload(studies)
        assert pyqr.stored == truth.instances
        # When one Orthanc alone (its DICOM port and its DICOMweb) is scanned
        alone = _scan([orthanc.dicom_port, orthanc.http_port])
        # And the whole estate of four services
        estate = _scan([orthanc.dicom_port, orthanc.http_port, qr.port, pyqr.port])
    for summary, services in ((alone, 2), (estate, 4)):
        exposure = summary["exposure"]
        assert isinstance(exposure, dict)
        # Then the headline is the distinct truth, not twice it
        assert (exposure["patients"], exposure["studies"], exposure["images"]) == (
            truth.patients, truth.studies, truth.instances,
        ), exposure  # fmt: skip
        assert exposure["services"] == services and not exposure["lower_bound"], exposure
        # And every patient is exposed by every service
        assert exposure["patients_by_services"] == {str(services): truth.patients}, exposure
        # And the link rules account for every patient, none ambiguous
        assert sum(exposure["patients_by_link"].values()) == truth.patients, exposure
        assert exposure["patients_ambiguous"] == 0
    # And one Orthanc sends the issuer on both its ports (QIDO-RS asks for it with includefield);
    # in the estate dcmqrscp and qrscp leave it out, so every patient is linked by PatientID
    # under its one issuer (measured with findscu and curl, issue 22)
    assert alone["exposure"]["patients_by_link"] == {"issuer": truth.patients}  # type: ignore[index]
    assert estate["exposure"]["patients_by_link"] == {"one_issuer": truth.patients}  # type: ignore[index]


def test_identical_archives_are_one_fleet_and_others_stand_alone(
    tmp_path: Path, studies: list[Dataset]
) -> None:
    # Given four lab PACS of one configuration (pynetdicom, same contexts and PDU) on two hosts,
    # beside a dcmqrscp and pynetdicom's qrscp, which differ from them and from each other
    with contextlib.ExitStack() as stack:
        pacs = [
            stack.enter_context(ExposedPacs(studies, host=host))
            for host in (LOOPBACK, LOOPBACK, OTHER, OTHER)
        ]
        qr = stack.enter_context(
            start_dcmqrscp(tmp_path / "qr", studies, called_aet="DCMQRSCP", allowed_calling=())
        )
        pyqr = stack.enter_context(start_qrscp(tmp_path / "qrscp", studies))
        qr_port = qr.port
        ports = [p.port for p in pacs] + [qr.port, pyqr.port]
        members = sorted(
            f"{h}:{p.port}" for h, p in zip((LOOPBACK, LOOPBACK, OTHER, OTHER), pacs, strict=True)
        )
        # When both hosts are scanned
        summary = _scan(ports, OTHER)
    fleets = summary["fleets"]
    assert isinstance(fleets, dict)
    # Then the four lab PACS are one fleet of two hosts, and nothing else is in a fleet
    by_size = {f["size"]: f for f in fleets["fleets"]}
    assert by_size[4]["family"] == "dicom" and by_size[4]["hosts"] == 2, fleets
    assert sorted(by_size[4]["services"]) == members
    assert by_size[4]["fingerprint"]["max_pdu"] and by_size[4]["fingerprint"]["accepted_contexts"]
    assert by_size[4]["honeypots"] == 0
    # And dcmqrscp, which binds every address and rejects our AE title (reason 7), is one
    # server on two addresses: a fleet by its reject codes, since its product is known
    assert by_size[2]["fingerprint"]["association"] == "rejected", fleets
    assert by_size[2]["services"] == [f"{LOOPBACK}:{qr_port}", f"{OTHER}:{qr_port}"]
    # And qrscp (the same implementation UID, other contexts) stands alone
    assert set(by_size) == {4, 2} and (fleets["fingerprinted"], fleets["in_fleets"]) == (7, 6)


def test_one_patient_id_under_two_issuers_is_two_patients_on_real_peers(tmp_path: Path) -> None:
    # Given two patients per PatientID: the same IDs assigned by two authorities (synthetic)
    first = make_studies(2, studies_per_patient=(1, 1), seed=2211)
    second = make_studies(2, studies_per_patient=(1, 1), seed=2212)
    ids = dict(
        zip(
            sorted({str(d.PatientID) for d in second}), sorted({str(d.PatientID) for d in first}), strict=True
        )
    )
    for ds in first:
        ds.IssuerOfPatientID = "HOSP-A"
    for ds in second:
        ds.IssuerOfPatientID = "HOSP-B"
        old = str(ds.PatientID)  # patient elements are shared by the instances of a patient
        ds.PatientID = ids.get(old, old)
    studies = first + second
    truth = {(str(d.PatientID), str(d.IssuerOfPatientID)) for d in studies}
    assert len(truth) == 4 and len({pid for pid, _ in truth}) == 2
    # And all of them on Orthanc (DICOM + DICOMweb) and dcmqrscp, which send the issuer, and on
    # qrscp, which leaves it out (measured)
    with (
        start_orthanc(tmp_path / "orthanc", OPEN_ORTHANC) as orthanc,
        start_dcmqrscp(tmp_path / "qr", studies, called_aet="DCMQRSCP", allowed_calling=()) as qr,
        start_qrscp(tmp_path / "qrscp", studies) as pyqr,
    ):
        orthanc.upload(studies)
        # When the estate is scanned
        summary = _scan([orthanc.dicom_port, orthanc.http_port, qr.port, pyqr.port])
    exposure = summary["exposure"]
    assert isinstance(exposure, dict)
    # Then the four patients stay four (never merged by PatientID), matched by ID and issuer
    assert exposure["patients"] == 4 and exposure["patients_by_link"] == {"issuer": 4}, exposure
    # And qrscp's records without issuer could be either patient of their ID: not counted, and
    # the headline says "at least"
    assert exposure["patients_ambiguous"] == 2 and exposure["lower_bound"], exposure
