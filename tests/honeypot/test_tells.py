"""Each honeypot tell, the score and the mark, against hand-built facts (no server)."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import pytest

from pacsradar.config import ScanOptions
from pacsradar.dicom.facts import AssociationFacts, DicomFacts, FindFacts
from pacsradar.dicom.honeypot import tells as T
from pacsradar.dicom.honeypot.score import (
    CHECK_ID,
    DEFAULT_THRESHOLD,
    combine,
    load_table,
    mark_suspects,
    score,
)
from pacsradar.models import Endpoint, Finding, Severity
from pacsradar.report.exposure import exposure_of

DCMTK_UID = "1.2.276.0.7230010.3.0.3.6.7"
PYNETDICOM_UID = "1.2.826.0.1.3680043.9.3811.3.0.4"


def real_ac(**kw: object) -> AssociationFacts:
    """An AC as DCMTK-based SCPs send it: 0x51, 0x52, 0x55, canary refused with result 3."""
    base = AssociationFacts(
        kind="accepted",
        reply_ms=3.0,
        user_items=(0x51, 0x52, 0x55),
        max_pdu=16384,
        implementation_class_uid=DCMTK_UID,
        implementation_version_name="OFFIS_DCMTK_367",
        canary_result=3,
        storage_proposed=6,
        storage_accepted=6,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def find(**kw: object) -> FindFacts:
    base = FindFacts(purpose="universal", level="STUDY", status=0x0000, matches=5, level_other=0)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def facts(
    *associations: AssociationFacts, finds: tuple[FindFacts, ...] = (), move: int | None = None
) -> DicomFacts:
    return DicomFacts(associations=associations, finds=finds, move_status=move)


REAL = facts(real_ac(), finds=(find(), find(purpose="random-patient", matches=0)))


def test_a_real_archive_shows_no_tell() -> None:
    # Given the facts of a well-behaved DCMTK-based archive (and the same with pynetdicom's identity)
    pynetdicom = facts(
        real_ac(
            implementation_class_uid=PYNETDICOM_UID,
            implementation_version_name="PYNETDICOM_304",
            max_pdu=16382,
        )
    )
    # Then no tell fires and the score is 0: a pynetdicom identity alone is not a tell
    for f in (REAL, pynetdicom, facts()):
        assert score(f).score == 0
        assert score(f).tells == ()


def test_table_and_functions_list_the_same_tells() -> None:
    # Given the weights table (data) and the tell functions (code)
    table = load_table()
    # Then every tell has a weight, a source and a function, and the default threshold agrees
    assert {t.id for t in table.tells if t.scope == "service"} == set(T.TELLS)
    # And the scan-level tells are the ones the scan-level pass emits
    from pacsradar.dicom.honeypot import scanwide

    assert {t.id for t in table.tells if t.scope == "scan"} == set(scanwide.SCAN_TELLS)
    assert all(t.source and 0 < t.weight < 100 for t in table.tells)
    assert table.default_threshold == DEFAULT_THRESHOLD == ScanOptions().honeypot_threshold
    raw = json.loads(resources.files("pacsradar.data").joinpath("honeypot_tells.json").read_text())
    assert raw["version"] == 3


@pytest.mark.parametrize(
    ("tell", "suspect", "evidence_part"),
    [
        ("ac-no-implementation-uid", facts(real_ac(user_items=(0x51,))), "0x51 (no 0x52)"),
        ("ac-dicompot-max-length", facts(real_ac(user_items=(0x51,), max_pdu=4194304)), "4,194,304"),
        ("random-syntax-accepted", facts(real_ac(canary_result=0)), "result 0"),
        (
            "find-image-attributes",
            facts(real_ac(), finds=(find(image_keywords=("BitsAllocated", "PixelData", "Rows")),)),
            "PixelData",
        ),
        (
            "find-oversized-response",
            facts(real_ac(), finds=(find(oversized=True, largest_response=0),)),
            "64 KiB",
        ),
        (
            "find-random-patient-matches",
            facts(real_ac(), finds=(find(purpose="random-patient", matches=3),)),
            "3 match(es)",
        ),
        ("find-level-not-echoed", facts(real_ac(), finds=(find(level_empty=5),)), "empty in 5 of 5"),
        (
            "find-fails-storage-open",
            facts(real_ac(), finds=(find(status=0xC311, matches=0), find(status=0xC311, matches=0))),
            "2 of 2",
        ),
        (
            "reject-protocol-version",
            facts(AssociationFacts(kind="rejected", rj=(1, 2, 2), reply_ms=5.0)),
            "source 2 reason 2",
        ),
        (
            "reject-fixed-delay",
            facts(
                AssociationFacts(kind="rejected", rj=(1, 1, 7), reply_ms=5004.0),
                AssociationFacts(kind="rejected", rj=(1, 1, 7), reply_ms=5010.0),
            ),
            "each after 5.0-5.0 s",
        ),
        ("identity-toolkit-mismatch", facts(real_ac(implementation_class_uid=PYNETDICOM_UID)), "16384"),
        (
            "move-random-destination-odd",
            facts(real_ac(implementation_class_uid=PYNETDICOM_UID, max_pdu=16382), move=0xC513),
            "0xC513",
        ),
    ],
)
def test_each_tell_fires_on_its_behaviour_and_says_what_it_saw(
    tell: str, suspect: DicomFacts, evidence_part: str
) -> None:
    # Given facts showing one honeypot behaviour
    fn = T.TELLS[tell]
    # When the tell reads them
    evidence = fn(suspect)
    # Then it fires with evidence naming what was seen, and never fires on the real archive
    assert evidence is not None and evidence_part in evidence
    assert fn(REAL) is None


def test_near_misses_are_not_tells() -> None:
    # Given behaviour real software shows: refusals, fast or varying rejections, A801 on C-MOVE
    assert T.reject_fixed_delay(facts(AssociationFacts(kind="rejected", reply_ms=4.0))) is None
    varying = facts(
        AssociationFacts(kind="rejected", reply_ms=2600.0), AssociationFacts(kind="rejected", reply_ms=9000.0)
    )
    assert T.reject_fixed_delay(varying) is None
    assert T.reject_protocol_version(facts(AssociationFacts(kind="rejected", rj=(1, 1, 7)))) is None
    assert T.move_random_destination_odd(facts(real_ac(), move=0xA801)) is None
    assert T.move_random_destination_odd(facts(real_ac(), move=0x0000)) is None  # dcmqrscp: no match
    # And a C-FIND refused with another failure (Orthanc's default), or storage only partly open
    refused = facts(real_ac(), finds=(find(status=0xC000, matches=0),))
    assert T.find_fails_storage_open(refused) is None
    partial = facts(real_ac(storage_accepted=2), finds=(find(status=0xC311, matches=0),))
    assert T.find_fails_storage_open(partial) is None
    # And responses that echo the level, or a level tell on a query that matched nothing
    assert T.find_level_not_echoed(facts(real_ac(), finds=(find(level_empty=0),))) is None
    assert T.find_level_not_echoed(facts(real_ac(), finds=(find(matches=0),))) is None


def test_scores_combine_noisy_or_and_stay_below_100() -> None:
    # Given weights of tells seen together
    # Then they combine as independent evidence: more tells, higher score, never 100
    assert combine([]) == 0
    assert combine([50]) == 50
    assert combine([50, 50]) == 75
    assert combine([45, 45]) == 70
    assert combine([30] * 10) == 97
    assert combine([20, 20]) < DEFAULT_THRESHOLD  # two weak tells are not enough


def test_dicompot_facts_score_above_the_threshold() -> None:
    # Given the facts dicompot's answers produce (as its source shows them)
    dicompot = facts(
        real_ac(user_items=(0x51,), max_pdu=4194304, implementation_class_uid=None, canary_result=0),
        finds=(find(level_empty=6, matches=6), find(purpose="random-patient", matches=0)),
    )
    # When scored
    result = score(dicompot)
    # Then four tells fire and the score is far above the default threshold
    assert {t.id for t in result.tells} == {
        "ac-no-implementation-uid",
        "ac-dicompot-max-length",
        "random-syntax-accepted",
        "find-level-not-echoed",
    }
    assert result.score >= 75
    assert all(t.line.startswith(f"{t.id} (+{t.weight}): ") for t in result.tells)


def _finding(check_id: str, port: int, evidence: dict[str, object], host: str = "127.0.0.1") -> Finding:
    return Finding(
        check_id=check_id,
        title=check_id,
        severity=Severity.CRITICAL if check_id == "DICOM-QUERY-PHI" else Severity.INFO,
        endpoint=Endpoint(host=host, port=port, protocol="dicom"),
        evidence=evidence,  # type: ignore[arg-type]
    )


def test_a_suspects_findings_are_marked_and_left_out_of_the_exposure() -> None:
    # Given a suspected honeypot on 11112 exposing "patients", and a real archive on 104
    phi = {"patients": 10, "studies": 10, "images": 10}
    honeypot = [
        _finding("DICOM-QUERY-PHI", 11112, phi),
        _finding(CHECK_ID, 11112, {"score": 84, "suspected": True}),
    ]
    real = [_finding("DICOM-QUERY-PHI", 104, {"patients": 2, "studies": 3, "images": 4}, "127.0.0.2")]
    # When the auditor marks the suspect's findings
    marked = mark_suspects(honeypot)
    # Then every finding of the suspect carries the mark and the score; the real ones do not
    assert all(f.suspected_honeypot for f in marked)
    assert marked[0].evidence["honeypot_score"] == 84 and marked[0].evidence["patients"] == 10
    assert mark_suspects(real) == tuple(real)
    # And the headline counts only the real archive, naming the suspect apart
    exposure = exposure_of([*marked, *real])
    assert (exposure.patients, exposure.studies, exposure.images) == (2, 3, 4)
    assert (exposure.services, exposure.honeypots) == (1, 1)
    assert exposure.sentence.endswith("; 1 service looks like honeypots (not counted)")
    # Unless the user asks to count them
    counted = exposure_of([*marked, *real], count_honeypots=True)
    # (these findings carry counts without keyed hashes: the headline is the larger, a lower bound)
    assert (counted.patients, counted.services, counted.honeypots) == (10, 2, 0)


def test_below_the_threshold_nothing_is_marked() -> None:
    # Given a honeypot finding whose score is under the threshold (the check says so)
    found = [
        _finding("DICOM-QUERY-PHI", 104, {"patients": 1}),
        _finding(CHECK_ID, 104, {"score": 20, "suspected": False}),
    ]
    # Then no finding is marked and the exposure counts it
    assert not any(f.suspected_honeypot for f in mark_suspects(found))
    assert exposure_of(found).patients == 1
