"""WEB-UNAUTH-PHI from a web page that lists patients (PixelMed's DicomAndWebStorageServer).

PixelMed's web side (``com.pixelmed.web.RequestTypeServer``, Debian libpixelmed-java) answers
``/?requestType=PATIENTLIST`` to anyone with an HTML table: one row per patient of its
database, the Patient ID as a link to ``?requestType=STUDYLIST&primaryKey=<key>`` and the
Patient Name beside it (``PatientListRequestHandler``; verified live, tests/web/test_pixelmed.py).

Counts only: the rows are counted by their distinct primary keys, each Patient ID is reduced to
its keyed hash (the same key as a C-FIND PatientID without issuer, so the estate headline can
count a patient seen on both the DICOM and the web port once) and the page is dropped. No name
or ID is kept. The path comes from the product's row in ``data/web_fingerprints.json``.
"""

from __future__ import annotations

import html
import re

from pacsradar.checks import Check, CheckOutcome, skipped
from pacsradar.identity import patient_record
from pacsradar.models import Evidence, Holdings, Severity
from pacsradar.web.context import WebContext
from pacsradar.web.data import fingerprint_table
from pacsradar.web.unauth_phi import UNAUTH_PHI

#: The largest page read; past it the count is a lower bound ("at least").
MAX_BODY = 4 * 1024 * 1024
#: One patient row: the study-list link with its primary key, and the Patient ID as its text.
_ROW = re.compile(
    r"<a\s+href=\"[^\"]{0,256}?requestType=STUDYLIST&(?:amp;)?primaryKey=([^\"&]{1,64})\"[^>]{0,64}>"
    r"([^<]{0,256})</a>",
    re.IGNORECASE,
)


def count_rows(page: str) -> tuple[set[str], set[str]]:
    """(distinct primary keys, distinct Patient IDs) of a patient-list page; values, so the
    caller hashes and drops them at once."""
    keys: set[str] = set()
    ids: set[str] = set()
    for match in _ROW.finditer(page):
        keys.add(match.group(1))
        pid = html.unescape(match.group(2)).strip()
        if pid and pid != "NONE":  # PixelMed writes NONE for a patient without an ID
            ids.add(pid)
    return keys, ids


async def _run(ctx: WebContext) -> CheckOutcome:
    path = fingerprint_table().paths_for(ctx.product).patient_list
    if path is None:
        return skipped("no patient-list page known for this product")
    reply = await ctx.get(path, max_body=MAX_BODY)
    if reply.needs_auth or reply.status == 403:
        ctx.auth_seen = True
        return CheckOutcome(details={"source": "patient-list", "auth_required": True})
    if reply.status != 200:
        return CheckOutcome(details={"source": "patient-list", "status": reply.status})
    keys, ids = count_rows(reply.text(MAX_BODY))
    hasher = ctx.options.hasher
    # The page shows no issuer: a record without one links to the DICOM side's patient when its
    # PatientID has one issuer in the estate (pacsradar.identity, issue 22).
    patients = sorted({r for pid in ids if (r := patient_record(hasher, pid, None)) is not None})
    del ids  # values end here (HACKING.md rule 1)
    count = len(keys)
    truncated = reply.truncated
    ctx.phi_exposed = ctx.phi_exposed or count > 0
    evidence: Evidence = {
        "patients": count,
        "source": "patient-list",
        "patients_basis": "distinct rows (database primary keys) of the anonymous patient list",
        "truncated": truncated,
        "identities_linked": bool(patients),
    }
    bound = "≥ " if truncated else ""
    summary = (
        f"{bound}{count} patients listed without authentication (source: patient list page)"
        if count
        else "patient list page open without authentication, currently empty"
    )
    finding = UNAUTH_PHI.finding(
        ctx.endpoint,
        summary=summary,
        evidence=evidence,
        product=ctx.product_label,
        severity=Severity.CRITICAL if count else Severity.HIGH,
        holdings=Holdings(patient_records=tuple(patients), truncated=truncated) if patients else None,
    )
    return CheckOutcome(details=evidence, findings=(finding,))


CHECK: Check[WebContext] = Check(name="web.patient_list", specs=(UNAUTH_PHI,), run=_run)

__all__ = ["CHECK", "count_rows"]
