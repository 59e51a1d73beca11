"""The estate headline on a real lab: the same patients in Orthanc (DICOM, REST and DICOMweb),
dcmqrscp, the pynetdicom lab PACS and pynetdicom's qrscp (which repeats each study once per
instance). The board figure must be the distinct truth; each service keeps its own counts.

Driven through the CLI as a user would (scan, then ``scans`` and ``report`` from the store).
"""

from __future__ import annotations

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
    return make_studies(4, seed=160)


def test_same_patients_on_eight_services_of_two_hosts_are_counted_once(
    tmp_path: Path, studies: list[Dataset]
) -> None:
    truth = summarise(studies)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    # Given the same synthetic patients in Orthanc (DICOM + REST/DICOMweb) and dcmqrscp, which
    # bind every address and so answer on both 127.0.0.1 and 127.0.0.3, pynetdicom's qrscp on
    # 127.0.0.1 only and the lab PACS on 127.0.0.3 only: eight exposed services on two hosts
    with (
        start_orthanc(tmp_path / "orthanc", OPEN_ORTHANC) as orthanc,
        start_dcmqrscp(tmp_path / "qr", studies, called_aet="DCMQRSCP", allowed_calling=()) as qr,
        start_qrscp(tmp_path / "qrscp", studies) as pyqr,
        ExposedPacs(studies, host=OTHER) as pacs,
    ):
        orthanc.upload(studies)
        assert pyqr.stored == truth.instances
        ports = [orthanc.dicom_port, orthanc.http_port, qr.port, pyqr.port, pacs.port]
        # When the host is scanned and stored
        scan = cli(
            "scan", LOOPBACK, OTHER, "--no-default-ports", "-p", ",".join(map(str, ports)),
            "--db", db, "-o", "jsonl", "--connect-timeout", "2", "--read-timeout", "5",
        )  # fmt: skip
    assert scan.returncode in (0, 1), scan.stderr
    summary = json.loads(scan.stdout.strip().splitlines()[-1])
    estate = summary["exposure"]
    # Then the headline is the distinct truth, not five times it
    assert (estate["patients"], estate["studies"], estate["images"]) == (
        truth.patients, truth.studies, truth.instances,
    )  # fmt: skip
    assert estate["services"] == 8 and not estate["lower_bound"]
    # And the per-service sum is kept and labelled, with every patient exposed by all eight
    assert estate["service_patients"] == 8 * truth.patients
    assert estate["patients_by_services"] == {"8": truth.patients}
    # And every service's own finding has the truth (qrscp's duplicates are not counted)
    for line in scan.stdout.strip().splitlines()[:-1]:
        f = json.loads(line)
        if f["check_id"] in ("DICOM-QUERY-PHI", "WEB-UNAUTH-PHI"):
            assert (f["evidence"]["patients"], f["evidence"]["studies"]) == (truth.patients, truth.studies), f
            assert "holdings" not in f and "_holdings" not in f["evidence"]
    # And `scans` reads the same two figures back from the store, labelled
    scans = cli("scans", "--db", db, "--json")
    assert scans.returncode == 0, scans.stderr
    (stored,) = json.loads(scans.stdout)
    assert stored["exposure"]["patients"] == truth.patients
    assert stored["exposure"]["service_patients"] == 8 * truth.patients
    table = cli("scans", "--db", db)
    assert "distinct patients" in table.stdout and "per-service patients" in table.stdout
    # And the report from the store opens with the distinct figure, then the per-service one
    report = cli("report", "--db", db, "-f", "md")
    assert report.returncode == 0, report.stderr
    assert f"**{truth.patients} distinct patients, {truth.studies} studies" in report.stdout
    assert "Per service" in report.stdout and "each service counted on its own" in report.stdout
