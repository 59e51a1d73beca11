"""Worklist / UPS facts and judgement on hand-built input (issue 24): the codec against
pynetdicom's, the tally against known answers, evaluate() and the headline as pure functions."""

from __future__ import annotations

import io

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from pacsradar.checks import CheckSpec
from pacsradar.dicom import dimse
from pacsradar.dicom.checks.ups import UPS_PHI
from pacsradar.dicom.checks.worklist import WORKLIST_PHI, evaluate
from pacsradar.dicom.sop import MWL_FIND, UPS_PULL, probe_contexts
from pacsradar.dicom.worklist import Tally, WorklistFacts, identifier
from pacsradar.errors import ProtocolError
from pacsradar.identity import patient_record
from pacsradar.models import Endpoint, Finding, Holdings, Severity
from pacsradar.phi import KeyedHasher
from pacsradar.report.exposure import exposure_of

EP = Endpoint(host="127.0.0.1", port=104, protocol="dicom")
HASHER = KeyedHasher(b"k" * 32)


def _item(pid: str, station: str = "CT1\\CT2", day: str = "20261207", *, undefined: bool = False) -> Dataset:
    ds = Dataset()
    ds.PatientName = "DOE^JANE"
    ds.PatientID = pid
    ds.PatientBirthDate = "19700101"
    ds.AccessionNumber = "A1"
    sps = Dataset()
    sps.Modality = "CT"
    sps.ScheduledStationAETitle = station
    sps.ScheduledProcedureStepStartDate = day
    sps.ScheduledPerformingPhysicianName = "DR^WHO"
    inner = Dataset()
    inner.CodeValue = "X"
    sps.ScheduledProtocolCodeSequence = [inner]  # a nested sequence inside the item: skipped
    ds.ScheduledProcedureStepSequence = [sps]
    if undefined:
        ds.ScheduledProcedureStepSequence.is_undefined_length = True
        sps.is_undefined_length_sequence_item = True
        sps.ScheduledProtocolCodeSequence.is_undefined_length = True
    return ds


@pytest.mark.parametrize("implicit", [True, False])
def test_universal_mwl_identifier_decodes_as_pydicom_reads_it(implicit: bool) -> None:
    # Given our universal MWL identifier, When pynetdicom decodes it
    ds = decode(io.BytesIO(identifier("MWL", implicit)), implicit, True)
    # Then every return key is empty and the step sequence holds one empty-keyed item
    assert ds.PatientID == "" and ds.AccessionNumber == ""
    (step,) = ds.ScheduledProcedureStepSequence
    assert step.Modality == "" and step.ScheduledStationAETitle == ""
    assert "ScheduledProcedureStepStartDate" in step
    ups = decode(io.BytesIO(identifier("UPS", implicit)), implicit, True)
    assert "ProcedureStepState" in ups and "ScheduledProcedureStepStartDateTime" in ups


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("undefined", [True, False])
def test_sequence_items_read_defined_and_undefined_lengths(implicit: bool, undefined: bool) -> None:
    # Given a worklist answer encoded by pynetdicom, with defined or undefined lengths
    raw = encode(_item("P1", undefined=undefined), implicit, True)
    assert raw is not None
    wanted = frozenset(dimse.DICTIONARY[k][0] for k in ("Modality", "ScheduledStationAETitle"))
    # When its step items are read
    items = dimse.sequence_items(raw, implicit, dimse.DICTIONARY["ScheduledProcedureStepSequence"][0], wanted)
    # Then the one item's values come back, the nested sequence skipped
    assert items == [{0x00080060: b"CT", 0x00400001: b"CT1\\CT2"}]


def test_tally_counts_distinct_patients_stations_and_days_not_values() -> None:
    # Given 3 answers for 2 patients on 3 stations over two days (one answer without PatientID)
    tally = Tally("MWL", HASHER)
    for ds in (_item("P1"), _item("P2", "CT3", "20261208"), _item("P1")):
        tally.add(encode(ds, True, True) or b"", True)
    nopid = _item("")
    tally.add(encode(nopid, True, True) or b"", True)
    facts = tally.facts(MWL_FIND, 0, False, cancel_ignored=False)
    # Then the facts are counts, keyed hashes, keywords and date shapes
    assert facts.records == 4 and len(facts.patients) == 2 and facts.records_without_patient == 1
    expected = {patient_record(HASHER, "P1", None), patient_record(HASHER, "P2", None)}
    assert facts.patients == tuple(sorted(r for r in expected if r))
    assert facts.stations == 3 and facts.modalities == ("CT",)
    assert (facts.year_min, facts.year_max, facts.scheduled_days, facts.span_days) == (2026, 2026, 2, 1)
    assert "ScheduledPerformingPhysicianName" in facts.identifying and "Modality" not in facts.identifying
    assert "P1" not in repr(facts) and "DOE" not in repr(facts)


def test_tally_refuses_malformed_answers_cleanly() -> None:
    # Given an answer whose sequence length runs past the end, When tallied, Then ProtocolError
    raw = bytearray(encode(_item("P1"), True, True) or b"")
    pos = raw.find(b"\x40\x00\x00\x01")  # (0040,0100) implicit: group, element
    raw[pos + 4 : pos + 8] = (10**6).to_bytes(4, "little")
    with pytest.raises(ProtocolError):
        Tally("MWL", HASHER).add(bytes(raw), True)


def _facts(**kw: object) -> WorklistFacts:
    base: dict[str, object] = {
        "model": "MWL",
        "sop_class": MWL_FIND,
        "records": 6,
        "patients": tuple((f"h{i}", "") for i in range(5)),
        "identifying": ("PatientID", "PatientName"),
        "modalities": ("CT", "MR"),
        "stations": 4,
        "final_status": 0,
    }
    base.update(kw)
    return WorklistFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "severity"),
    [
        (_facts(), Severity.CRITICAL),
        (_facts(identifying=()), Severity.MEDIUM),
        (_facts(records=0, patients=()), Severity.LOW),
    ],
)
def test_evaluate_grades_by_what_came_back(facts: WorklistFacts, severity: Severity) -> None:
    # Given hand-built facts, When judged, Then the severity follows what came back
    (f,) = evaluate(facts, WORKLIST_PHI, EP, product="Orthanc", max_records=1000)
    assert f.severity == severity
    if facts.records:
        assert f.holdings is not None and f.holdings.source == "worklist"
        assert f.evidence["patients"] == len(facts.patients)
    else:
        assert f.holdings is None


@pytest.mark.parametrize(
    "facts", [_facts(records=0, refusal="A-ABORT"), _facts(records=0, final_status=0xC001)]
)
def test_evaluate_reports_nothing_for_a_refusal(facts: WorklistFacts) -> None:
    assert evaluate(facts, WORKLIST_PHI, EP, product=None, max_records=1000) == ()


def test_evaluate_truncated_says_at_least_and_ups_names_workitems() -> None:
    (f,) = evaluate(
        _facts(model="UPS", sop_class=UPS_PULL, truncated=True, stations=0),
        UPS_PHI,
        EP,
        product=None,
        max_records=6,
        noun="workitems",
    )
    assert "≥ 6 workitems" in f.summary and "stations" not in f.summary
    assert f.evidence["truncated"] is True


@pytest.mark.parametrize("spec", [WORKLIST_PHI, UPS_PHI])
def test_product_remediation(spec: CheckSpec) -> None:
    assert "DicomAlwaysAllowFindWorklist" in spec.remediation_for("Orthanc 1.10.1")
    assert "wlmscpfs" in spec.remediation_for("DCMTK-based (DCMTK or Orthanc) 3.6.7")
    assert "dcmAcceptUnknownCallingAETitles" in spec.remediation_for("dcm4chee-arc 5.31")


def _finding(check_id: str, patients: tuple[str, ...], source: str, port: int) -> Finding:
    return Finding(
        check_id=check_id,
        title="t",
        severity=Severity.CRITICAL,
        endpoint=Endpoint(host="127.0.0.1", port=port, protocol="dicom"),
        evidence={"patients": len(patients)},
        holdings=Holdings(patients=patients, source=source),
    )


def test_headline_counts_each_patient_once_and_says_where_from() -> None:
    # Given 20 archived patients, 5 scheduled, 3 of them in both
    archive = tuple(f"p{i}" for i in range(20))
    worklist = ("p0", "p1", "p2", "n1", "n2")
    findings = [
        _finding("DICOM-QUERY-PHI", archive, "archive", 104),
        _finding("DICOM-WORKLIST-PHI", worklist, "worklist", 105),
    ]
    # When the headline is made
    exposure = exposure_of(findings)
    # Then it is 22 distinct patients, with the sources said
    assert exposure.patients == 22
    assert "(20 patients in archives, 5 patients scheduled in worklists, 3 in both)" in exposure.sentence
    # and an archive-only scan reads as before
    assert "(" not in exposure_of(findings[:1]).sentence


def test_ups_contexts_are_proposed_after_the_old_ones() -> None:
    uids = [c.abstract_syntax for c in probe_contexts()]
    assert uids.index(UPS_PULL) == len(uids) - 3 and len(uids) <= 128


def test_modality_free_text_is_never_reported() -> None:
    # Given a peer that puts a name into Modality, When tallied, Then it reads as OTHER
    ds = _item("P1")
    ds.ScheduledProcedureStepSequence[0].Modality = "DOEJOHN"
    tally = Tally("MWL", HASHER)
    tally.add(encode(ds, True, True) or b"", True)
    assert tally.facts(MWL_FIND, 0, False, cancel_ignored=False).modalities == ("OTHER",)
