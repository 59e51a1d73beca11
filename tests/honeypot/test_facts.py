"""Facts recorded from what a peer sent: AC shape, C-FIND answer shape. Counts, never values."""

from __future__ import annotations

import asyncio

from pydicom.dataset import Dataset

from lab import CANARY
from lab.honeypots import _dicompot_ac
from pacsradar.dicom import dimse
from pacsradar.dicom.client import AssociationKind, AssociationResult, DicomClient, encode_associate_rq
from pacsradar.dicom.facts import (
    IDENTIFIER_BOUND,
    association_facts,
    recorder_for,
    top_level_tags,
)
from pacsradar.dicom.sop import CANARY_SYNTAX, STORAGE, probe_contexts
from pacsradar.net import Stream
from pacsradar.phi import KeyedHasher

IMPLICIT = "1.2.840.10008.1.2"


def _implicit(ds: Dataset) -> bytes:
    from pynetdicom.dsutils import encode

    raw = encode(ds, True, True)
    assert raw is not None
    return bytes(raw)


def record(level: str | None, *, pid: str = f"{CANARY}77", pixels: bool = False) -> bytes:
    ds = Dataset()
    if level is not None:
        ds.QueryRetrieveLevel = level
    ds.PatientName = f"{CANARY}Doe^Jane"
    ds.PatientID = pid
    ds.StudyInstanceUID = "1.2.3.4"
    if pixels:
        ds.Rows, ds.Columns, ds.BitsAllocated = 8, 8, 16
        ds.PixelData = b"\x00" * 128
    return _implicit(ds)


def query(level: str, pid: str = "") -> bytes:
    keys = [("QueryRetrieveLevel", level), ("PatientID", pid), ("StudyInstanceUID", "")]
    return dimse.encode_identifier(keys, True)


def test_a_find_answer_is_reduced_to_keywords_counts_and_hashes() -> None:
    # Given a universal STUDY query and three answers: level echoed, empty, missing
    recorder = recorder_for(query("STUDY"), IMPLICIT, KeyedHasher())
    assert (recorder.purpose, recorder.level) == ("universal", "STUDY")
    for rsp in (record("STUDY"), record(""), record(None, pixels=True)):
        recorder.add(0xFF00, rsp)
    recorder.add(0x0000, None)
    recorder.close(0x0000)
    # When the facts are taken
    facts = recorder.facts()
    # Then they hold matches, keywords and how the level was echoed, never a value
    assert facts.matches == 3 and facts.status == 0x0000
    assert (facts.level_missing, facts.level_empty, facts.level_other) == (1, 1, 0)
    assert {"PatientID", "PatientName", "QueryRetrieveLevel", "StudyInstanceUID"} <= set(facts.keywords)
    assert facts.image_keywords == ("BitsAllocated", "Columns", "PixelData", "Rows")
    assert CANARY not in repr(facts) and "1.2.3.4" not in repr(facts)
    assert facts.patient_set_digest is not None and len(facts.patient_set_digest) == 24


def test_the_patient_set_digest_changes_with_the_people_not_the_order() -> None:
    # Given the same patients in another order, and other patients
    def digest(pids: list[str]) -> str | None:
        hasher = KeyedHasher(b"k" * 32)
        rec = recorder_for(query("STUDY"), IMPLICIT, hasher)
        for pid in pids:
            rec.add(0xFF00, record("STUDY", pid=pid))
        return rec.facts().patient_set_digest

    # Then the digest is the set's, keyed: same people, same digest; new people, a new one
    assert digest(["A1", "B2"]) == digest(["B2", "A1"])
    assert digest(["A1", "B2"]) != digest(["C3", "D4"])


def test_a_random_patient_query_and_an_oversized_answer_are_named() -> None:
    # Given our random-PatientID probe and an answer far larger than any identifier
    recorder = recorder_for(query("STUDY", pid="PRDEADBEEF"), IMPLICIT, KeyedHasher())
    recorder.add(0xFF00, b"\x00" * (IDENTIFIER_BOUND + 2))
    # Then the probe is recognised and the answer is counted and flagged, not parsed
    facts = recorder.facts()
    assert facts.purpose == "random-patient"
    assert facts.matches == 1 and facts.oversized and facts.keywords == ()


def test_top_level_tags_skip_sequences_without_reading_them() -> None:
    # Given an identifier with a nested sequence
    inner = Dataset()
    inner.PatientID = f"{CANARY}X"
    ds = Dataset()
    ds.PatientName = f"{CANARY}A"
    ds.OtherPatientIDsSequence = [inner]
    ds.StudyInstanceUID = "1.2"
    # Then only the top level is listed
    assert top_level_tags(_implicit(ds), True) == [0x00100010, 0x00101002, 0x0020000D]


def _client_for(ac: bytes) -> DicomClient:
    reader = asyncio.StreamReader()
    reader.feed_data(ac)
    reader.feed_eof()

    class _W:
        def write(self, data: bytes) -> None: ...
        async def drain(self) -> None: ...
        def close(self) -> None: ...
        async def wait_closed(self) -> None: ...

    return DicomClient(Stream(reader, _W(), read_timeout=1.0), max_pdu_bytes=1 << 20, nudge=False)  # type: ignore[arg-type]


async def test_dicompots_ac_is_recorded_as_its_source_builds_it() -> None:
    # Given dicompot's A-ASSOCIATE-AC for our probe request (tests/lab/honeypots.py)
    rq = encode_associate_rq("ANY", "SCU", probe_contexts())
    ac, _ = _dicompot_ac(rq)
    client = _client_for(ac)
    # When our client reads it
    result = await client.associate("ANY", "SCU", probe_contexts())
    facts = association_facts(result)
    # Then the facts say: Maximum Length alone, 4 MiB, no implementation UID, canary accepted
    assert facts.user_items == (0x51,) and facts.max_pdu == 4 << 20
    assert facts.implementation_class_uid is None
    assert facts.canary_result == 0
    assert (facts.storage_proposed, facts.storage_accepted) == (len(STORAGE), len(STORAGE))
    assert facts.reply_ms is not None and facts.ac_digest is not None


async def test_the_ac_digest_ignores_the_echoed_ae_titles() -> None:
    # Given the same software answering two requests with different AE titles
    digests = set()
    for called in ("AAAA", "BBBBBBBB"):
        rq = encode_associate_rq(called, "SCU" + called, probe_contexts())
        ac, _ = _dicompot_ac(rq)
        result = await _client_for(ac).associate(called, "SCU" + called, probe_contexts())
        digests.add(result.ac_digest)
    # Then the digest is the same: it identifies the software, not our request
    assert len(digests) == 1


def test_a_rejection_keeps_result_source_reason_and_timing() -> None:
    # Given an A-ASSOCIATE-RJ after five seconds
    rj = AssociationResult(
        kind=AssociationKind.REJECTED,
        called_aet="A",
        calling_aet="B",
        rj_result=1,
        rj_source=2,
        rj_reason=2,
        reply_ms=5001.0,
    )
    # Then its facts are the three codes and the delay
    facts = association_facts(rj, identity_offered=True)
    assert facts.rj == (1, 2, 2) and facts.reply_ms == 5001.0 and facts.identity_offered
    assert facts.user_items == () and not facts.accepted


def test_the_canary_is_a_fresh_uuid_uid_proposed_last() -> None:
    # Given our probe contexts
    contexts = probe_contexts()
    # Then the last is a 2.25 UID (PS3.5 B.2) within the 64-character UI bound
    assert contexts[-1].abstract_syntax == CANARY_SYNTAX
    assert CANARY_SYNTAX.startswith("2.25.") and len(CANARY_SYNTAX) <= 64
