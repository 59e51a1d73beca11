"""Real servers near the honeypot line, stated as they are (issue 22, part 3).

odil 0.12's default acceptor (Debian python3-odil) accepts every proposed abstract syntax,
our random 2.25 canary too, while the SCP behind it serves only C-ECHO and C-FIND: its
retrieve and storage contexts prove nothing, so those judgements are marked unverified at low
severity. Its C-FIND answers are real records with unique keys and stay DICOM-QUERY-PHI.
(CTN simple_storage's placeholder answers: tests/dicom/test_more_peers.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dicom.helpers import attempt_details, finding, result_for, scan
from lab.odil import odil_available, start_odil
from pacsradar.dicom.fingerprint import load_table
from pacsradar.lab.synthetic import make_studies, summarise
from pacsradar.models import Severity


@pytest.mark.skipif(not odil_available(), reason="Debian python3-odil (for /usr/bin/python3) not installed")
def test_odil_accepts_any_syntax_so_retrieve_and_store_are_unverified(tmp_path: Path) -> None:
    # Given odil's C-FIND SCP with its default acceptor, serving synthetic studies to anyone
    studies = make_studies(3, seed=22)
    truth = summarise(studies)
    with start_odil(tmp_path, studies) as peer:
        # When it is audited
        report = scan([("127.0.0.1", peer.port)])
    result = result_for(report, peer.port)
    # Then odil is named from its own implementation UID, and the row says it was verified live
    service = attempt_details(result, "dicom.service")
    assert service["implementation_class_uid"] == "1.2.826.0.1.3680043.9.55600.0"
    assert result.product == "odil Odil 0"
    assert next(r.evidence for r in load_table() if r.product == "odil") == "verified live"
    # And retrieve and store, judged from a negotiation that accepts everything, are unverified
    for check_id in ("DICOM-RETRIEVE-OPEN", "DICOM-STORE-OPEN"):
        found = finding(result, check_id)
        assert found is not None
        assert found.severity is Severity.LOW
        assert "unverified: the service accepts any abstract syntax" in found.summary
        assert found.evidence["any_abstract_syntax_accepted"] is True
    # But its real records (with StudyInstanceUID) are still counted exactly as exposure
    phi = finding(result, "DICOM-QUERY-PHI")
    assert phi is not None and phi.severity is Severity.CRITICAL
    assert (phi.evidence["patients"], phi.evidence["studies"]) == (truth.patients, truth.studies)
    assert finding(result, "DICOM-QUERY-PLACEHOLDER") is None
