"""Issue 26: the JSON document is written in pieces (``iter_document``), never built whole; the
pieces must join into exactly the text ``document_json`` builds, byte for byte."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pacsradar_samples as S
from test_json_document import NOW, RISK, errors

from pacsradar.models import ScanReport
from pacsradar.report.jsondoc import document_json, iter_document, write_document


def _cases() -> list[ScanReport]:
    lab = S.lab_report()
    # Hostile text with markup, line breaks, non-ASCII and a line separator in a peer's banner.
    odd = '<script>&amp;</script>\n\u2028 \u00e9\u4e2d "quoted" \\ back'
    weird = S.result(
        "127.0.0.9", 104, [S.finding(S.DICOM_ANON, "127.0.0.9", 104, summary=odd, product=odd)], product=odd
    )
    empty = S.report("scan-empty", [])
    one = S.report("scan-one", [weird], scope=(odd,))
    many = S.report(
        "scan-many",
        [S.result(f"127.0.1.{i}", 11112, [S.finding(S.TLS, f"127.0.1.{i}", 11112)]) for i in range(1, 40)],
    )
    return [lab, empty, one, many, lab.model_copy(update={"finished_at": None})]


def test_streamed_document_is_byte_identical() -> None:
    for report in _cases():
        for accepted in ((), (RISK,)):
            # Given a report (and the risks its owner accepted)
            whole = document_json(report, accepted=accepted, at=NOW)
            # When the document is streamed
            pieces = list(iter_document(report, accepted=accepted, at=NOW))
            # Then the pieces join into exactly the one-shot text, which is a valid document
            assert "".join(pieces) == whole, report.scan_id
            assert len(pieces) > len(report.results)  # each result is its own piece
            assert errors(json.loads(whole)) == []
            assert "<" not in whole and ">" not in whole and "&" not in whole


def test_write_document_writes_the_stream() -> None:
    # Given the lab report and a text file
    buf = io.StringIO()
    # When written through write_document
    write_document(S.lab_report(), buf, accepted=(RISK,), at=NOW + timedelta(days=1))
    # Then it is the document
    assert buf.getvalue() == document_json(S.lab_report(), accepted=(RISK,), at=NOW + timedelta(days=1))
