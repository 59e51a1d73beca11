"""DICOMWEB-UNAUTH-QIDO: QIDO-RS lists studies to anonymous callers (PS3.18 §10.6).

Counting, not collecting: ``GET {base}/studies?limit=&offset=&includefield=00201208`` pages are
parsed for counts and dropped. Every count is of distinct things, never of rows: studies are
distinct keyed hashes of StudyInstanceUID (a server that repeats a study on several rows counts
it once), patients distinct PatientID (+ IssuerOfPatientID, asked for with ``includefield``
since it is no default study attribute, PS3.18 Table 10.6.3-3) as two keyed hashes linked by
:func:`pacsradar.identity.link`, instances the
largest NumberOfStudyRelatedInstances given per distinct study. The hashes travel with the
finding (:class:`pacsradar.models.Holdings`) for the scan-wide distinct headline.
Paging stops at ``options.max_records``. The result is memoised on
the context: WEB-UNAUTH-PHI and the WADO/STOW checks reuse it.
"""

from __future__ import annotations

from typing import Any

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.errors import ProtocolError, ScanError
from pacsradar.identity import PatientRecord, link, patient_record
from pacsradar.models import Evidence, Holdings, Severity
from pacsradar.web.client import HttpReply
from pacsradar.web.context import WebContext
from pacsradar.web.data import fingerprint_table
from pacsradar.web.facts import QidoResult
from pacsradar.web.fingerprint import learn_dicomweb
from pacsradar.web.refs import ACCESS, CWE_306, PS318

PAGE_SIZE = 100
#: PS3.18 §8.7.3 media types: DICOM JSON (Annex F) as application/dicom+json, some servers
#: answer application/json.
_ACCEPT = {"Accept": "application/dicom+json, application/json;q=0.9"}
_TAG_PATIENT_ID = "00100020"
_TAG_ISSUER = "00100021"
_TAG_STUDY_UID = "0020000D"
_TAG_STUDY_DATE = "00080020"
_TAG_N_INSTANCES = "00201208"  # NumberOfStudyRelatedInstances (PS3.4 C.3.4 optional return key)

UNAUTH_QIDO = CheckSpec(
    id="DICOMWEB-UNAUTH-QIDO",
    title="DICOMweb QIDO-RS searchable without authentication",
    severity=Severity.HIGH,
    category="access-control",
    description=(
        "The QIDO-RS search service (DICOM PS3.18) answers anonymous requests with the list of"
        " studies: patient identifiers, names, dates and accession numbers."
    ),
    remediation=(
        "Require authentication (OAuth2/OpenID Connect bearer tokens or at least HTTP Basic"
        " over TLS) for every DICOMweb route, and restrict network access to the viewers that"
        " need it."
    ),
    product_remediation={
        "Orthanc": (
            "Orthanc: set AuthenticationEnabled true with strong RegisteredUsers, keep"
            " RemoteAccessAllowed false where possible, or put the authorization plugin in front"
            " of /dicom-web."
        ),
        "dcm4chee": (
            "dcm4chee-arc-light: deploy the secured archive (Keycloak, -D secure=all) so the"
            " RESTful services under /dcm4chee-arc/aets/*/rs require a token."
        ),
    },
    references=(PS318, *ACCESS, CWE_306),
    cwe="CWE-306",
)

SPECS: tuple[CheckSpec, ...] = (UNAUTH_QIDO,)


def candidate_bases(ctx: WebContext) -> list[tuple[str, str]]:
    """(template, concrete path) pairs: the product's DICOMweb roots, else common ones."""
    table = fingerprint_table()
    product = ctx.product
    paths = table.paths_for(product)
    aets = (ctx.fingerprint.aets if ctx.fingerprint else ()) or (
        (paths.default_aet,) if paths.default_aet else ()
    )
    out: list[tuple[str, str]] = []
    for template in paths.dicomweb or table.paths_for(None).dicomweb:
        if "{aet}" in template:
            out.extend((template, template.replace("{aet}", aet)) for aet in aets[:2])
        else:
            out.append((template, template))
    return out[:3]


def _first_value(item: dict[str, Any], tag: str) -> Any:
    element = item.get(tag)
    if not isinstance(element, dict):
        return None
    values = element.get("Value")
    if isinstance(values, list) and values:
        return values[0]
    return None


def _looks_like_qido(data: Any) -> bool:
    """A JSON array of DICOM JSON objects (PS3.18 Annex F): keys are 8 hex digits."""
    if not isinstance(data, list):
        return False
    if not data:
        return True
    first = data[0]
    return isinstance(first, dict) and all(
        isinstance(k, str) and len(k) == 8 and all(c in "0123456789abcdefABCDEF" for c in k)
        for k in list(first)[:8]
    )


def _page_data(reply: HttpReply) -> list[Any] | None:
    if reply.status == 204:
        return []
    if reply.status != 200:
        return None
    if reply.content_type not in ("application/dicom+json", "application/json", ""):
        return None
    try:
        data = reply.json()
    except ProtocolError:
        return None
    return data if _looks_like_qido(data) else None


async def qido_count(ctx: WebContext) -> QidoResult:
    """Memoised: the first open QIDO-RS base found, counted; else auth/absent."""
    if ctx.qido is not None:
        return ctx.qido
    result = await _count(ctx)
    ctx.qido = result
    if result.status in ("open", "auth"):
        learn_dicomweb(ctx)
    return result


async def _count(ctx: WebContext) -> QidoResult:
    bases = candidate_bases(ctx)
    saw_auth = False
    last_error: ScanError | None = None
    tried = 0
    for template, base in bases:
        tried += 1
        try:
            first = await ctx.client.request(
                "GET", f"{base}/studies?limit=1&includefield={_TAG_N_INSTANCES}", headers=_ACCEPT
            )
        except ScanError as exc:
            last_error = exc
            continue
        if first.needs_auth or first.status == 403:
            saw_auth = True
            ctx.auth_seen = True
            continue
        if _page_data(first) is None:
            continue
        return await _page_through(ctx, template, base, tried)
    if saw_auth:
        return QidoResult(status="auth", bases_tried=tried)
    if last_error is not None and tried == len(bases):
        raise last_error
    return QidoResult(status="absent", bases_tried=tried)


async def _page_through(ctx: WebContext, template: str, base: str, tried: int) -> QidoResult:
    hasher = ctx.options.hasher
    max_records = max(1, ctx.options.max_records)
    studies: dict[str, int | None] = {}
    patients: set[PatientRecord] = set()
    years: list[int] = []
    sample: str | None = None
    pages = 0
    duplicates = 0
    truncated = False
    offset = 0
    while True:
        limit = min(PAGE_SIZE, max_records - len(studies))
        if limit <= 0:
            truncated = True
            break
        reply = await ctx.client.request(
            "GET",
            f"{base}/studies?limit={limit}&offset={offset}"
            f"&includefield={_TAG_N_INSTANCES}&includefield={_TAG_ISSUER}",
            headers=_ACCEPT,
        )
        data = _page_data(reply)
        if data is None:
            if pages == 0:
                raise ProtocolError("QIDO-RS answered the probe but not the first page")
            break  # a later page failing ends the count; what we have is a lower bound
        pages += 1
        new = 0
        rows = 0
        for item in data:
            if not isinstance(item, dict):
                continue
            rows += 1
            uid = _first_value(item, _TAG_STUDY_UID)
            key = hasher.digest(str(uid)) if isinstance(uid, str) else f"row{offset + rows}"
            n = _first_value(item, _TAG_N_INSTANCES)
            images = int(str(n).strip()) if isinstance(n, int | str) and str(n).strip().isdigit() else None
            if key in studies:
                duplicates += 1
                before = studies[key]
                if images is not None:
                    studies[key] = images if before is None else max(before, images)
                continue
            studies[key] = images
            new += 1
            if sample is None and isinstance(uid, str):
                sample = uid
            pid = _first_value(item, _TAG_PATIENT_ID)
            if isinstance(pid, str | int):
                issuer = _first_value(item, _TAG_ISSUER)
                record = patient_record(hasher, str(pid), str(issuer) if isinstance(issuer, str) else None)
                if record is not None:
                    patients.add(record)
            date = _first_value(item, _TAG_STUDY_DATE)
            if isinstance(date, str) and len(date) >= 4 and date[:4].isdigit():
                years.append(int(date[:4]))
            if len(studies) >= max_records:
                break
        del data, reply  # bodies are parsed for counts and dropped
        if len(studies) >= max_records:
            truncated = True
            break
        if new == 0 or rows < limit:
            break  # last page, or a server that ignores offset (no new studies)
        offset += rows
    known = [v for v in studies.values() if v is not None]
    holdings = Holdings(
        patient_records=tuple(sorted(patients)),
        source="archive",  # QIDO-RS searches stored studies
        studies=tuple(k for k in studies if not k.startswith("row")),
        study_images=tuple(-1 if v is None else v for k, v in studies.items() if not k.startswith("row")),
        truncated=truncated,
    )
    return QidoResult(
        status="open",
        base_template=template,
        studies=len(studies),
        instances=sum(known) if known else None,
        patients=link((p, 0) for p in patients).count if patients else None,
        pages=pages,
        truncated=truncated,
        year_min=min(years) if years else None,
        year_max=max(years) if years else None,
        bases_tried=tried,
        base=base,
        sample_study_uid=sample,
        holdings=holdings if studies else None,
        duplicate_rows=duplicates,
    )


async def _run(ctx: WebContext) -> CheckOutcome:
    result = await qido_count(ctx)
    details: Evidence = {"status": result.status, "bases_tried": result.bases_tried}
    if result.status == "absent":
        return skipped("no QIDO-RS endpoint found", status="absent", bases_tried=result.bases_tried)
    if result.status == "auth":
        return CheckOutcome(details=details)
    ctx.phi_exposed = ctx.phi_exposed or result.studies > 0
    details.update(result.evidence())
    label = ctx.product_label
    summary = (
        f"QIDO-RS at {result.base_template} lists {result.studies} studies"
        + (f" of {result.patients} patients" if result.patients is not None else "")
        + (f", {result.instances} instances" if result.instances is not None else "")
        + (" (stopped at --max-records)" if result.truncated else "")
        + " without authentication"
    )
    finding = UNAUTH_QIDO.finding(
        ctx.endpoint,
        summary=summary,
        evidence=result.evidence(),
        product=label,
        severity=Severity.HIGH if result.studies else Severity.MEDIUM,
        holdings=result.holdings,
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[WebContext] = Check(name="web.dicomweb.qido", specs=SPECS, run=_run)

__all__ = ["CHECK", "SPECS", "UNAUTH_QIDO", "QidoResult", "candidate_bases", "qido_count"]
