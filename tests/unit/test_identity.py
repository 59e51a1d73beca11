"""Patient identity across implementations (issue 22): the linking rule, by example and by
property. Records are built the way the checks build them (keyed hashes of normalised values);
every PatientID and issuer here is synthetic."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pacsradar.identity import legacy_record, link, normalise, patient_record
from pacsradar.phi import KeyedHasher

HASHER = KeyedHasher(b"k" * 32)


def rec(pid: str | bytes, issuer: str | bytes | None = None) -> tuple[str, str]:
    r = patient_record(HASHER, pid, issuer)
    assert r is not None
    return r


def test_padding_and_encodings_the_standard_lets_differ_are_one_value() -> None:
    # Given the same LO value padded with spaces, NUL, and sent as Latin-1 bytes or UTF-8 text
    # Then it normalises to one value (PS3.5 Table 6.2-1), and case is kept
    assert normalise(b"MRN1 ") == normalise(" MRN1") == normalise("MRN1\x00") == "MRN1"
    assert normalise("M\u00dcLLER".encode("latin-1")) == normalise("M\u00dcLLER") == normalise("MU\u0308LLER")
    assert normalise("mrn1") != normalise("MRN1")
    assert rec("MRN1 ", b"HOSP\x00") == rec(" MRN1", "HOSP")
    # And a blank PatientID is no record at all; a blank issuer is no issuer
    assert patient_record(HASHER, b"   ", "HOSP") is None
    assert rec("MRN1", "  ") == rec("MRN1") == rec("MRN1", None)


def test_a_record_without_issuer_joins_the_one_issuer_of_its_patient_id() -> None:
    # Given a DICOM port that sends the issuer and a web service that leaves it out
    linkage = link([(rec("P1", "A"), "dicom"), (rec("P1"), "web"), (rec("P2", "A"), "dicom")])
    # Then they are two patients, P1 on both services
    assert linkage.count == 2
    assert sorted(len(t) for t in linkage.patients.values()) == [1, 2]
    assert linkage.by_rule() == {"issuer": 1, "one_issuer": 1, "no_issuer": 0, "legacy": 0}
    assert linkage.ambiguous == 0


def test_the_same_patient_id_under_two_issuers_never_merges() -> None:
    # Given one PatientID under two assigning authorities, and the same ID without an issuer
    linkage = link([(rec("P1", "A"), 1), (rec("P1", "B"), 2), (rec("P1"), 3)])
    # Then the two issuers are two patients, and the bare record is ambiguous, not a third
    assert linkage.count == 2
    assert linkage.ambiguous == 1
    assert linkage.by_rule()["issuer"] == 2


def test_no_issuer_anywhere_is_the_patient_id_alone() -> None:
    linkage = link([(rec("P1"), 1), (rec("P1"), 2), (rec("P2"), 1)])
    assert linkage.count == 2 and linkage.by_rule()["no_issuer"] == 2


def test_legacy_hashes_count_each_on_their_own() -> None:
    # Given the single hashes an older stored scan kept, beside new records
    linkage = link([(legacy_record("abcd"), 1), (legacy_record("abcd"), 2), (rec("P1"), 1)])
    # Then a legacy hash links only to itself
    assert linkage.count == 2 and linkage.by_rule()["legacy"] == 1


# --- properties -----------------------------------------------------------------------------

ids = st.sampled_from([f"MRN{i}" for i in range(6)])
issuers = st.sampled_from(["HOSP-A", "HOSP-B", "CLINIC"])
pads = st.sampled_from(["", " ", "  ", "\x00"])


@st.composite
def estates(draw: st.DrawFn) -> tuple[set[tuple[str, str | None]], list[tuple[tuple[str, str], int]]]:
    """True patients (PatientID, issuer or None), and what services answered for them: each
    service holds some of them, pads values as it likes and may leave the issuer out."""
    truth = draw(st.sets(st.tuples(ids, st.one_of(st.none(), issuers)), min_size=1, max_size=8))
    records: list[tuple[tuple[str, str], int]] = []
    for service in range(draw(st.integers(1, 4))):
        drops = draw(st.booleans())
        for pid, issuer in sorted(truth, key=str):
            if not draw(st.booleans()):
                continue
            pad = draw(pads)
            sent = None if drops or issuer is None else pad + issuer
            records.append((rec(draw(pads) + pid + pad, sent), service))
    return truth, records


def _seen(truth: set[tuple[str, str | None]], records: list[tuple[tuple[str, str], int]]) -> int:
    """How many true patients appear in any record (the distinct truth of what was exposed)."""
    shown = {r for r, _ in records}
    return sum(1 for pid, issuer in truth if rec(pid, issuer) in shown or rec(pid) in shown)


@settings(max_examples=300, deadline=None)
@given(estates())
def test_the_count_never_exceeds_the_distinct_truth(
    estate: tuple[set[tuple[str, str | None]], list[tuple[tuple[str, str], int]]],
) -> None:
    # Given any estate of services answering for synthetic patients
    truth, records = estate
    # Then the headline is never above the number of distinct true patients: merges only lower it
    assert link(records).count <= len(truth)


@settings(max_examples=300, deadline=None)
@given(estates())
def test_with_one_issuer_per_patient_id_the_count_is_the_truth(
    estate: tuple[set[tuple[str, str | None]], list[tuple[tuple[str, str], int]]],
) -> None:
    truth, records = estate
    # Given an estate where each PatientID belongs to one patient (issuer known or not)
    by_id: dict[str, int] = {}
    for pid, _ in truth:
        by_id[pid] = by_id.get(pid, 0) + 1
    if any(n > 1 for n in by_id.values()):
        return
    # Then the count is exactly the patients the services exposed, none ambiguous
    linkage = link(records)
    assert linkage.count == _seen(truth, records)
    assert linkage.ambiguous == 0
    assert sum(linkage.by_rule().values()) == linkage.count


@settings(max_examples=300, deadline=None)
@given(estates())
def test_two_issuers_of_one_patient_id_are_never_merged(
    estate: tuple[set[tuple[str, str | None]], list[tuple[tuple[str, str], int]]],
) -> None:
    _, records = estate
    linkage = link(records)
    # Then every distinct (PatientID, issuer) pair that was sent is its own patient
    sent_with_issuer = {r for r, _ in records if r[1]}
    assert sent_with_issuer <= set(linkage.patients)
    # And every service's record went to a patient or was counted ambiguous
    placed = {s for tags in linkage.patients.values() for s in tags}
    assert placed == {s for _, s in records} or linkage.ambiguous > 0


@settings(max_examples=200, deadline=None)
@given(estates(), st.integers(0, 2**32))
def test_order_does_not_matter_and_more_records_never_lower_the_count(
    estate: tuple[set[tuple[str, str | None]], list[tuple[tuple[str, str], int]]], seed: int
) -> None:
    _, records = estate
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    # Then the linkage is the same in any order
    first, second = link(records), link(shuffled)
    assert first.patients == second.patients and first.by_rule() == second.by_rule()
    assert first.ambiguous == second.ambiguous
    # And a prefix of the estate never counts more than the whole
    half = shuffled[: len(shuffled) // 2]
    assert link(half).count <= first.count
