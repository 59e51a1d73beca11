"""Worklist, UPS and Patient Root exposure against real peers on loopback (issue 24).

Peers: DCMTK's wlmscpfs (worklist files made by dump2dcm, called AE = folder name), Orthanc
1.10.1 with its ModalityWorklists plugin (both DicomAlwaysAllowFindWorklist settings), and a
pynetdicom MWL + UPS SCP. Each serves 6 scheduled items for 5 synthetic patients.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dicom.helpers import attempt_details, finding, ids, result_for, scan
from lab.orthanc import PLUGIN_DIR, orthanc_available, start_orthanc
from lab.worklist import (
    DUMP2DCM,
    WLMSCPFS,
    WorklistScp,
    make_worklist,
    orthanc_worklist_config,
    patient_level,
    start_wlmscpfs,
    write_wl_files,
)
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies
from pacsradar.report.exposure import exposure_of

SCHEDULED = make_worklist()
needs_wlmscpfs = pytest.mark.skipif(
    not (WLMSCPFS.is_file() and DUMP2DCM.is_file()), reason="dcmtk wlmscpfs/dump2dcm not installed"
)
needs_orthanc_mwl = pytest.mark.skipif(
    not (orthanc_available() and (PLUGIN_DIR / "libModalityWorklists.so").is_file()),
    reason="orthanc with the ModalityWorklists plugin not installed",
)


def _worklist(port: int, **kw: object) -> tuple[object, object]:
    report = scan([("127.0.0.1", port)], **kw)
    result = result_for(report, port)
    return report, result


@needs_wlmscpfs
def test_wlmscpfs_found_through_its_default_called_aet(tmp_path: Path) -> None:
    # Given wlmscpfs serving 6 items for 5 patients under DCMTK's documented called AE OFFIS
    with start_wlmscpfs(tmp_path, SCHEDULED.items, called_aet="OFFIS") as peer:
        # When pacsradar scans it with no credential and no AE title given
        report, result = _worklist(peer.port)
    # Then the called AE is guessed and the worklist exposure counted exactly, values dropped
    assert "DICOM-AE-GUESSABLE" in ids(result)  # type: ignore[arg-type]
    mwl = finding(result, "DICOM-WORKLIST-PHI")  # type: ignore[arg-type]
    assert mwl is not None and mwl.severity == "critical"
    assert mwl.evidence["patients"] == 5 and mwl.evidence["scheduled_items"] == 6
    assert mwl.evidence["stations"] == SCHEDULED.stations
    assert mwl.evidence["modalities"] == list(SCHEDULED.modalities)
    assert {"PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"} <= set(
        mwl.evidence["phi_attributes"]  # type: ignore[arg-type]
    )
    assert "ScheduledPerformingPhysicianName" in mwl.evidence["phi_attributes"]  # type: ignore[operator]
    assert "wlmscpfs" in mwl.remediation
    exposure = exposure_of(report.findings)  # type: ignore[attr-defined]
    assert exposure.patients == 5
    assert "5 patients scheduled in worklists" in exposure.sentence


@needs_wlmscpfs
def test_wlmscpfs_with_a_site_called_aet_found_through_the_wordlist(tmp_path: Path) -> None:
    # Given wlmscpfs whose only worklist folder is a site-specific called AE
    with start_wlmscpfs(tmp_path, SCHEDULED.items, called_aet="RADWL7") as peer:
        # When scanned without, then with, that title in --aet-wordlist
        _, blind = _worklist(peer.port)
        _, guided = _worklist(peer.port, aet_wordlist=("NOPE", "RADWL7"))
    # Then only the wordlist finds it (no defaults match), and the worklist is then counted
    assert "DICOM-WORKLIST-PHI" not in ids(blind)  # type: ignore[arg-type]
    mwl = finding(guided, "DICOM-WORKLIST-PHI")  # type: ignore[arg-type]
    assert mwl is not None and mwl.evidence["patients"] == 5


@needs_wlmscpfs
def test_wlmscpfs_bounded_by_max_records_with_cancel(tmp_path: Path) -> None:
    # Given the same worklist, When the scan is bounded to 2 records
    with start_wlmscpfs(tmp_path, SCHEDULED.items) as peer:
        _, result = _worklist(peer.port, max_records=2)
    # Then it stops at the bound (C-CANCEL) and says "at least"
    mwl = finding(result, "DICOM-WORKLIST-PHI")  # type: ignore[arg-type]
    assert mwl is not None and mwl.evidence["truncated"] is True
    assert mwl.evidence["scheduled_items"] == 2
    assert "≥ 2" in mwl.summary


@needs_orthanc_mwl
@pytest.mark.parametrize("always_allow", [True, False])
def test_orthanc_worklist_plugin(tmp_path: Path, always_allow: bool) -> None:
    # Given Orthanc with its ModalityWorklists plugin and 6 .wl files made by dump2dcm
    write_wl_files(SCHEDULED.items, tmp_path / "wl")
    config = orthanc_worklist_config(tmp_path / "wl", always_allow=always_allow)
    with start_orthanc(tmp_path / "orthanc", config, plugins=("libModalityWorklists.so",)) as orthanc:
        # When pacsradar scans it from an unregistered AE
        _, result = _worklist(orthanc.dicom_port)
    mwl = finding(result, "DICOM-WORKLIST-PHI")  # type: ignore[arg-type]
    details = attempt_details(result, "dicom.worklist")  # type: ignore[arg-type]
    if always_allow:
        # Then with DicomAlwaysAllowFindWorklist the worklist is exposed, counted exactly
        assert mwl is not None and mwl.severity == "critical"
        assert (mwl.evidence["patients"], mwl.evidence["scheduled_items"]) == (5, 6)
        assert "DicomAlwaysAllowFindWorklist" in mwl.remediation
    else:
        # Then without it Orthanc refuses (A-ABORT): no finding, and the attempt says refused
        assert mwl is None
        assert details["refused"] is True and details["refusal"] == "A-ABORT"


def test_pynetdicom_mwl_and_ups_scp() -> None:
    # Given a pynetdicom SCP answering MWL and UPS Pull C-FIND to anyone
    with WorklistScp(SCHEDULED) as scp:
        # When pacsradar scans it
        report, result = _worklist(scp.port)
    # Then both services are reported with the true counts, and the patient counts once
    mwl = finding(result, "DICOM-WORKLIST-PHI")  # type: ignore[arg-type]
    ups = finding(result, "DICOM-UPS-PHI")  # type: ignore[arg-type]
    assert mwl is not None and ups is not None
    assert (ups.evidence["patients"], ups.evidence["scheduled_items"], ups.evidence["model"]) == (5, 6, "UPS")
    assert "ProcedureStepState" not in ups.evidence["phi_attributes"]  # type: ignore[operator]
    exposure = exposure_of(report.findings)  # type: ignore[attr-defined]
    # (one service: MWL and UPS on one port are one service, its count the larger of the two)
    assert exposure.patients == 5 and exposure.service_patients == 5


def test_patient_root_only_archive_counted_at_patient_level() -> None:
    # Given an archive that negotiates Patient Root FIND and GET but not Study Root
    studies = make_studies(4, seed=31)
    with WorklistScp(SCHEDULED, patient_root=patient_level(studies)) as scp:
        _, result = _worklist(scp.port)
    # Then C-FIND is asked at PATIENT level and C-GET is judged from negotiation
    q = finding(result, "DICOM-QUERY-PHI")  # type: ignore[arg-type]
    assert q is not None and q.evidence["query_level"] == "PATIENT"
    assert q.evidence["patients"] == len({str(s.PatientID) for s in studies})
    get = attempt_details(result, "dicom.retrieve")  # type: ignore[arg-type]
    assert get["get_negotiated"] == ["PatientRoot-GET"]
    assert "DICOM-RETRIEVE-OPEN" in ids(result)  # type: ignore[arg-type]


def test_headline_says_where_patients_come_from() -> None:
    # Given an archive of 4 studies and a worklist scheduling 2 of its patients again plus 3 new
    studies = make_studies(4, seed=32)
    archive_ids = sorted({str(s.PatientID) for s in studies})
    scheduled = make_worklist(patient_ids=archive_ids[:2], issuer=None)
    with ExposedPacs(studies) as pacs, WorklistScp(scheduled, host="127.0.0.1") as scp:
        # When one scan covers both
        report = scan([("127.0.0.1", pacs.port), ("127.0.0.1", scp.port)])
    exposure = exposure_of(report.findings)
    # Then each patient counts once, and the headline says where they come from
    assert exposure.patients_by_source == {"archive": len(archive_ids), "worklist": 5}
    assert exposure.patients_in_several_sources == 2
    assert exposure.patients == len(archive_ids) + 3
    assert (
        f"({len(archive_ids)} patients in archives, 5 patients scheduled in worklists, 2 in both)"
        in exposure.sentence
    )


# The SCP (pynetdicom) leaks the socket of the association we abort; that is the peer's leak,
# not pacsradar's (the product's sockets are checked by every other test under -W error).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_worklist_that_ignores_cancel_is_aborted_and_says_so() -> None:
    # Given an MWL SCP with 200 items that ignores C-CANCEL
    with WorklistScp(make_worklist(200, 50), ignore_cancel=True) as scp:
        # When scanned with a bound of 3 records
        _, result = _worklist(scp.port, max_records=3)
    # Then the counts up to the bound stand, and the attempt is an error that says why
    mwl = finding(result, "DICOM-WORKLIST-PHI")  # type: ignore[arg-type]
    assert mwl is not None and mwl.evidence["truncated"] is True and mwl.evidence["scheduled_items"] == 3
    attempt = next(a for a in result.attempts if a.check == "dicom.worklist")  # type: ignore[attr-defined]
    assert attempt.status == "error" and "C-CANCEL" in (attempt.reason or "")
