"""Odd real servers stated as they are (issue 22), on hand-built facts: no server here.

The live counterparts: tests/dicom/test_odd_real_peers.py (odil), test_more_peers.py (CTN),
tests/web/test_pixelmed.py and tests/web/test_unanswered_paths.py."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from pacsradar.config import ScanOptions
from pacsradar.dicom.checks import placeholder, retrieve, store
from pacsradar.dicom.client import IMPLICIT_VR_LE, AssociationKind, AssociationResult
from pacsradar.dicom.context import DicomContext, QueryFacts
from pacsradar.dicom.sop import CANARY_SYNTAX, STORAGE, STUDY_ROOT_FIND, STUDY_ROOT_MOVE
from pacsradar.engine import merge_results
from pacsradar.models import Attempt, AttemptStatus, Endpoint, Severity, TargetResult
from pacsradar.net import Net
from pacsradar.outcome import untested_reason
from pacsradar.phi import KeyedHasher
from pacsradar.web.patient_list import count_rows

ENDPOINT = Endpoint(host="127.0.0.1", port=11112)


def accepted(*uids: str) -> AssociationResult:
    return AssociationResult(
        kind=AssociationKind.ACCEPTED,
        called_aet="ANY",
        calling_aet="PR",
        accepted={uid: (1 + 2 * i, IMPLICIT_VR_LE) for i, uid in enumerate(uids)},
    )


def context(assoc: AssociationResult, query: QueryFacts | None = None) -> DicomContext:
    ctx = DicomContext(
        endpoint=ENDPOINT, options=ScanOptions(), net=cast(Net, None), stack=contextlib.AsyncExitStack()
    )
    ctx.accepted = assoc
    ctx.query = query
    return ctx


REAL_QUERY = QueryFacts("STUDY", 5, 3, 14, ("PatientName",), 2020, 2021, False, 0)
SERVED = (STUDY_ROOT_FIND, STUDY_ROOT_MOVE, *STORAGE)


def run(check: Any, ctx: DicomContext) -> Any:
    return asyncio.run(check.run(ctx))


def test_an_acceptor_that_takes_the_random_syntax_makes_retrieve_and_store_unverified() -> None:
    # Given an AC that accepted our random 2.25 abstract syntax along with retrieve and storage
    ctx = context(accepted(*SERVED, CANARY_SYNTAX), REAL_QUERY)
    # When the negotiation-only checks judge it
    moved, stored = run(retrieve, ctx), run(store, ctx)
    # Then both say unverified, at low severity, even though C-FIND returned records
    for outcome in (moved, stored):
        (found,) = outcome.findings
        assert found.severity is Severity.LOW
        assert "unverified: the service accepts any abstract syntax" in found.summary
        assert found.evidence["any_abstract_syntax_accepted"] is True


def test_a_real_acceptor_keeps_its_negotiation_judgements() -> None:
    # Given the same contexts accepted, but the random syntax refused (as every real SCP does)
    ctx = context(accepted(*SERVED), REAL_QUERY)
    # Then retrieve is high (C-FIND answers with records) and store keeps its medium severity
    (moved,) = run(retrieve, ctx).findings
    (stored,) = run(store, ctx).findings
    assert moved.severity is Severity.HIGH and stored.severity is Severity.MEDIUM
    assert "unverified" not in moved.summary + stored.summary


def test_placeholder_records_expose_nothing() -> None:
    # Given query facts marked as placeholder answers, and records without keys at all
    canned = QueryFacts("STUDY", 4, 0, None, ("PatientName",), None, None, False, 0, placeholder=True)
    # Then they count as no exposure, and retrieve is not raised by them
    assert REAL_QUERY.exposes_records and not canned.exposes_records
    (moved,) = run(retrieve, context(accepted(*SERVED), canned)).findings
    assert moved.severity is Severity.MEDIUM
    assert placeholder.unkeyed(4, 4) and not placeholder.unkeyed(4, 3) and not placeholder.unkeyed(0, 0)


def test_the_placeholder_spec_is_low_and_never_critical() -> None:
    assert placeholder.QUERY_PLACEHOLDER.severity is Severity.LOW


def test_a_patient_list_page_is_counted_by_its_rows() -> None:
    # Given a page shaped like PixelMed's patient list (synthetic values), one ID repeated
    page = (
        "<table><tr><th>Patient's ID</th><th>Patient's Name</th></tr>"
        '<tr><td><a href="?requestType=STUDYLIST&primaryKey=1">PID001</a></td><td>Doe^Jane</td></tr>'
        '<tr><td><a href="?requestType=STUDYLIST&amp;primaryKey=2">PID&amp;2</a></td><td>Roe</td></tr>'
        '<tr><td><a href="?requestType=STUDYLIST&primaryKey=3">NONE</a></td><td>x</td></tr>'
        '<tr><td><a href="?requestType=STUDYLIST&primaryKey=1">PID001</a></td><td>Doe^Jane</td></tr>'
        "</table>"
    )
    # When its rows are counted
    keys, ids = count_rows(page)
    # Then distinct rows count, and IDs (for hashing) are unescaped, without PixelMed's NONE
    assert keys == {"1", "2", "3"}
    assert ids == {"PID001", "PID&2"}
    hasher = KeyedHasher(b"k" * 32)
    assert hasher.patient("PID001") == hasher.patient(b"PID001", None)  # as a C-FIND PatientID


def test_a_dicom_timeout_on_a_port_that_speaks_http_is_not_could_not_test() -> None:
    # Given the DICOM auditor's read timeout on a port where the web auditor then spoke HTTP
    web_endpoint = Endpoint(host="127.0.0.1", port=7091, protocol="http")
    dicom_part = TargetResult(
        endpoint=Endpoint(host="127.0.0.1", port=7091),
        reachable=True,
        attempts=(Attempt(check="dicom.service", status=AttemptStatus.ERROR, reason="ReadTimeout: x"),),
        error="ReadTimeout: x",
    )
    web_part = TargetResult(
        endpoint=web_endpoint,
        reachable=True,
        service="http",
        attempts=(Attempt(check="web.fingerprint", status=AttemptStatus.COMPLETED),),
    )
    # When the engine folds the two together
    merged = merge_results(web_endpoint, [dicom_part, web_part], 1.0)
    # Then the DICOM error is kept as a skipped attempt with the reason, and the port is tested
    probe = merged.attempts[0]
    assert probe.status is AttemptStatus.SKIPPED and probe.reason == "ReadTimeout: x; the port speaks http"
    assert untested_reason(merged) is None
    # But alone (nothing spoke on the port) the same part stays 'could not test'
    assert untested_reason(merge_results(web_endpoint, [dicom_part], 1.0)) is not None
