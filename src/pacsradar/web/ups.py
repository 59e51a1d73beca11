"""WEB-UPS-PHI: UPS-RS lists scheduled workitems to anonymous callers (PS3.18 §11.9).

``GET {base}/workitems?limit=&offset=&includefield=...`` (SearchForUPS, PS3.18 §11.9.3) on the
DICOMweb base that QIDO-RS found (else the product's or the common roots), paged up to
``--max-records``. Every page is reduced to the same facts as a UPS C-FIND
(:class:`pacsradar.dicom.worklist.WorklistFacts`: keyed patient hashes, keywords, date shapes)
and dropped; the judgement is the DICOM worklist check's pure :func:`evaluate`, and the
holdings count as scheduled ("worklist") in the estate headline.
"""

from __future__ import annotations

import contextlib
from datetime import date
from typing import Any

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.dicom.checks.ups import PS34_UPS
from pacsradar.dicom.checks.worklist import evaluate, evidence_of
from pacsradar.dicom.worklist import NOT_IDENTIFYING, WorklistFacts
from pacsradar.errors import ProtocolError, ScanError
from pacsradar.identity import PatientRecord, patient_record
from pacsradar.models import Evidence, Severity
from pacsradar.web.client import HttpReply
from pacsradar.web.context import WebContext
from pacsradar.web.qido import candidate_bases
from pacsradar.web.refs import ACCESS, CWE_306, PS318

PAGE_SIZE = 100
_ACCEPT = {"Accept": "application/dicom+json, application/json;q=0.9"}
#: PS3.4 Table CC.2.5-3 return keys, as DICOM JSON tags (PS3.18 Annex F)
_TAGS = {
    "00100010": "PatientName",
    "00100020": "PatientID",
    "00100021": "IssuerOfPatientID",
    "00100030": "PatientBirthDate",
    "00100040": "PatientSex",
    "00741000": "ProcedureStepState",
    "00741204": "ProcedureStepLabel",
    "00404005": "ScheduledProcedureStepStartDateTime",
}
_INCLUDE = ",".join(_TAGS)

UPS_RS_PHI = CheckSpec(
    id="WEB-UPS-PHI",
    title="DICOMweb UPS-RS lists scheduled workitems without authentication",
    severity=Severity.CRITICAL,
    category="access-control",
    description=(
        "The UPS-RS worklist service (DICOM PS3.18 §11.9, SearchForUPS) answers anonymous "
        "requests with workitems: who is scheduled, for which procedure step, and when."
    ),
    remediation=(
        "Require authentication (OAuth2/OpenID Connect bearer tokens) for every DICOMweb route "
        "including /workitems, and restrict network access to the performers that need it."
    ),
    product_remediation={
        "dcm4chee": (
            "dcm4chee-arc-light: deploy the secured archive (Keycloak, -D secure=all) so "
            "/dcm4chee-arc/aets/*/rs/workitems requires a token."
        ),
    },
    references=(PS318, PS34_UPS, *ACCESS, CWE_306),
    cwe="CWE-306",
)
SPECS: tuple[CheckSpec, ...] = (UPS_RS_PHI,)


def _value(item: dict[str, Any], tag: str) -> Any:
    element = item.get(tag)
    if not isinstance(element, dict):
        return None
    values = element.get("Value")
    return values[0] if isinstance(values, list) and values else None


def _page(reply: HttpReply) -> list[Any] | None:
    """A SearchForUPS answer: 200 with a DICOM JSON array, or 204 (no matches)."""
    if reply.status == 204:
        return []
    if reply.status != 200 or reply.content_type not in ("application/dicom+json", "application/json", ""):
        return None
    try:
        data = reply.json()
    except ProtocolError:
        return None
    if not isinstance(data, list) or (data and not isinstance(data[0], dict)):
        return None
    return data


class _Tally:
    def __init__(self, ctx: WebContext) -> None:
        self.hasher = ctx.options.hasher
        self.records = 0
        self.without_patient = 0
        self.patients: set[PatientRecord] = set()
        self.keywords: set[str] = set()
        self.days: set[date] = set()

    def add(self, item: dict[str, Any]) -> None:
        self.records += 1
        for tag, keyword in _TAGS.items():
            if keyword not in NOT_IDENTIFYING and _value(item, tag) not in (None, ""):
                self.keywords.add(keyword)
        pid = _value(item, "00100020")
        issuer = _value(item, "00100021")
        record = (
            patient_record(self.hasher, str(pid), issuer if isinstance(issuer, str) else None)
            if isinstance(pid, str | int)
            else None
        )
        if record is not None:
            self.patients.add(record)
        else:
            self.without_patient += 1
        when = _value(item, "00404005")
        if isinstance(when, str) and len(when) >= 8 and when[:8].isdigit() and len(self.days) < 4096:
            with contextlib.suppress(ValueError):
                self.days.add(date(int(when[:4]), int(when[4:6]), int(when[6:8])))

    def facts(self, truncated: bool) -> WorklistFacts:
        days = sorted(self.days)
        return WorklistFacts(
            model="UPS-RS",
            sop_class="",
            records=self.records,
            patients=tuple(sorted(self.patients)),
            records_without_patient=self.without_patient,
            identifying=tuple(sorted(self.keywords)),
            year_min=days[0].year if days else None,
            year_max=days[-1].year if days else None,
            scheduled_days=len(days),
            span_days=(days[-1] - days[0]).days if days else None,
            truncated=truncated,
            final_status=0,
        )


async def search(ctx: WebContext) -> tuple[str, WorklistFacts] | str:
    """(base template, facts) for the first open /workitems, else "auth" or "absent"."""
    qido = ctx.qido
    bases = [(qido.base_template or qido.base, qido.base)] if qido and qido.base else candidate_bases(ctx)
    saw_auth = False
    for template, base in bases:
        try:
            first = await ctx.client.request("GET", f"{base}/workitems?limit=1", headers=_ACCEPT)
        except ScanError:
            continue
        if first.needs_auth or first.status == 403:
            saw_auth = ctx.auth_seen = True
            continue
        if _page(first) is None:
            continue
        return template, await _page_through(ctx, base)
    return "auth" if saw_auth else "absent"


async def _page_through(ctx: WebContext, base: str) -> WorklistFacts:
    tally = _Tally(ctx)
    max_records = max(1, ctx.options.max_records)
    offset = 0
    while True:
        limit = min(PAGE_SIZE, max_records - tally.records)
        if limit <= 0:
            return tally.facts(True)
        reply = await ctx.client.request(
            "GET", f"{base}/workitems?limit={limit}&offset={offset}&includefield={_INCLUDE}", headers=_ACCEPT
        )
        data = _page(reply)
        del reply  # bodies are parsed for counts and dropped
        if data is None:
            return tally.facts(False)
        rows = 0
        for item in data[:limit]:
            if isinstance(item, dict):
                rows += 1
                tally.add(item)
        del data
        if tally.records >= max_records:
            return tally.facts(True)
        if rows < limit or rows == 0:
            return tally.facts(False)
        offset += rows


async def _run(ctx: WebContext) -> CheckOutcome:
    found = await search(ctx)
    if found == "absent":
        return skipped("no UPS-RS /workitems endpoint found")
    if isinstance(found, str):
        return CheckOutcome(details={"status": found})
    template, facts = found
    details: Evidence = {"status": "open", "base_template": template}
    details.update(evidence_of(facts, ctx.options.max_records))
    if facts.records:
        ctx.phi_exposed = ctx.phi_exposed or bool(facts.identifying)
    findings = evaluate(
        facts,
        UPS_RS_PHI,
        ctx.endpoint,
        product=ctx.product_label,
        max_records=ctx.options.max_records,
        noun="workitems",
    )
    return CheckOutcome(details=details, findings=findings)


CHECK: Check[WebContext] = Check(name="web.dicomweb.ups", specs=SPECS, run=_run)

__all__ = ["CHECK", "SPECS", "UPS_RS_PHI", "search"]
