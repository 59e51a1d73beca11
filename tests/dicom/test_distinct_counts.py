"""Counts are of distinct patients, studies and images, never of C-FIND responses (issue 16).

pynetdicom's qrscp application (a real, widely copied SCP) sends one STUDY-level response per
instance; dcmqrscp reports no NumberOfStudyRelatedInstances. Both must still give exact counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dicom.helpers import finding, result_for, scan
from lab.dcmtk import DCMQRSCP, dcmtk_available, start_dcmqrscp
from lab.qrscp import start_qrscp
from pacsradar.config import Limits
from pacsradar.lab.synthetic import make_studies, summarise

PATIENT = Limits(connect_timeout=2.0, read_timeout=10.0, assoc_timeout=10.0, target_deadline=90.0)


@pytest.fixture(scope="module")
def studies() -> list[Dataset]:
    return make_studies(5, seed=16)


def test_qrscp_duplicating_responses_counts_distinct_studies(tmp_path: Path, studies: list[Dataset]) -> None:
    # Given pynetdicom's qrscp holding synthetic studies, stored over C-STORE
    truth = summarise(studies)
    with start_qrscp(tmp_path / "qrscp", studies) as qr:
        assert qr.stored == truth.instances
        # When pacsradar audits it (qrscp is a Python process: on a loaded machine its first
        # A-ASSOCIATE-AC can take longer than the 2 s default --assoc-timeout)
        report = scan([("127.0.0.1", qr.port)], limits=PATIENT)
    result = result_for(report, qr.port)
    phi = finding(result, "DICOM-QUERY-PHI")
    assert phi is not None, result.attempts
    ev = phi.evidence
    # Then the peer really duplicated: one STUDY response per instance
    assert ev["records"] == truth.instances > truth.studies
    # And the counts are of distinct things, with the duplicates said out loud
    assert (ev["patients"], ev["studies"], ev["images"]) == (truth.patients, truth.studies, truth.instances)
    assert ev["duplicate_records"] == truth.instances - truth.studies
    assert ev["images_basis"] == "distinct SOPInstanceUIDs (IMAGE-level C-FIND)"
    assert f"{truth.instances - truth.studies} duplicate responses not counted" in phi.summary
    # And the keyed hashes behind them travel with the finding, never in its evidence
    assert phi.holdings is not None
    assert len(phi.holdings.patient_records) == truth.patients and len(phi.holdings.studies) == truth.studies
    assert sum(phi.holdings.study_images) == truth.instances
    assert "holdings" not in phi.model_dump_json()
    assert result.product and result.product.startswith("pynetdicom")


@pytest.mark.skipif(not dcmtk_available(DCMQRSCP), reason="Debian dcmtk not installed")
def test_dcmqrscp_without_instance_counts_gets_images_from_sop_instance_uids(
    tmp_path: Path, studies: list[Dataset]
) -> None:
    # Given dcmqrscp (which does not return NumberOfStudyRelatedInstances) open to any peer
    truth = summarise(studies)
    with start_dcmqrscp(tmp_path / "qr", studies, called_aet="HOSPQR", allowed_calling=()) as qr:
        report = scan([("127.0.0.1", qr.port)], aet_wordlist=("HOSPQR",))
    phi = finding(result_for(report, qr.port), "DICOM-QUERY-PHI")
    assert phi is not None
    # Then images come from distinct SOPInstanceUIDs and match the truth
    assert (phi.evidence["patients"], phi.evidence["studies"], phi.evidence["images"]) == (
        truth.patients, truth.studies, truth.instances,
    )  # fmt: skip
    assert phi.evidence["duplicate_records"] == 0
