"""Modality Worklist exposure: who is scheduled today, told to anyone (PS3.4 Annex K).

A Modality Worklist SCP answers C-FIND on 1.2.840.10008.5.1.4.31 with the Scheduled Procedure
Steps of the day: patient names, IDs, birth dates, accession numbers, requested procedures,
performing physicians and the AE titles of the modalities. We send one bounded universal
C-FIND (``--max-records``, C-CANCEL at the bound) from the association that was already
accepted for an unregistered, random calling AE (or a guessed called AE), and keep counts,
keyed patient hashes, attribute keywords and date shapes (:mod:`pacsradar.dicom.worklist`).

The probe records :class:`~pacsradar.dicom.worklist.WorklistFacts`; :func:`evaluate` is a pure
function of them. Patients are the same keyed identity as the archive query's, and the
finding's holdings are labelled ``worklist``, so the estate headline counts a patient who is
both scheduled and archived once and says where patients come from.
"""

from __future__ import annotations

from pacsradar.checks import (
    GDPR_ART32,
    HIPAA_ACCESS,
    PS315_ANNEX_E,
    Check,
    CheckOutcome,
    CheckSpec,
    Reference,
    cwe,
    skipped,
)
from pacsradar.dicom.context import DicomContext
from pacsradar.dicom.sop import MWL_FIND
from pacsradar.dicom.worklist import WorklistFacts, probe
from pacsradar.models import AttemptStatus, Endpoint, Evidence, Finding, Holdings, Severity

PS34_MWL = Reference(
    title="DICOM PS3.4 Annex K: Basic Worklist Management Service (Modality Worklist)",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part04.html#chapter_K",
)
#: What every scheduled-work exposure (MWL, UPS) cites besides its own service annex.
PHI_REFERENCES = (PS315_ANNEX_E, HIPAA_ACCESS, GDPR_ART32, cwe(359))

#: Product-aware remediation; keys match the fingerprint's product label, first match wins, so
#: 'DCMTK-based (DCMTK or Orthanc)' (wlmscpfs and Orthanc share DCMTK's UID) comes first.
WORKLIST_POLICY = {
    "DCMTK-based": (
        "If this is DCMTK's wlmscpfs: it has no calling-AE or host allow-list; its called-AE "
        "folders under --data-files-path are the only gate and they are guessable, so restrict "
        "the port to the modalities' addresses (host firewall, VLAN or VPN). If this is Orthanc: "
        'set "DicomAlwaysAllowFindWorklist": false and register the modalities in "DicomModalities".'
    ),
    "Orthanc": (
        'Orthanc: set "DicomAlwaysAllowFindWorklist": false (it lets any calling AE read the '
        'worklist), list each modality in "DicomModalities" with "DicomCheckModalityHost": true, '
        'and keep "DicomCheckCalledAet": true.'
    ),
    "DCMTK": (
        "DCMTK wlmscpfs: it has no calling-AE or host allow-list; its called-AE folders under "
        "--data-files-path are the only gate and they are guessable, so restrict the port to the "
        "modalities' addresses (host firewall, VLAN or VPN) or put an AE-checking broker in front."
    ),
    "dcm4che": (
        "dcm4chee-arc: disable 'Accept Unknown Calling AE Titles' (dcmAcceptUnknownCallingAETitles) "
        "on the worklist AE and register each modality as a network AE."
    ),
    "pynetdicom": (
        "pynetdicom: set AE.require_called_aet = True and AE.require_calling_aet to the modalities."
    ),
}

WORKLIST_PHI = CheckSpec(
    id="DICOM-WORKLIST-PHI",
    title="DICOM Modality Worklist returns scheduled patients to an unknown peer",
    severity=Severity.CRITICAL,
    category="dicom",
    description=(
        "A universal Modality Worklist C-FIND (PS3.4 Annex K) from an unregistered AE title "
        "returned scheduled procedure steps with identifying attributes (PS3.15 Annex E): "
        "anyone who can reach the port can list who is scheduled, for what, and on which modality."
    ),
    remediation=(
        "Answer worklist queries only for registered modalities (calling AE title bound to its "
        "host address), restrict the port to the modality network, and use DICOM TLS with client "
        "certificates."
    ),
    product_remediation=WORKLIST_POLICY,
    references=(PS34_MWL, *PHI_REFERENCES),
    cwe="CWE-359",
)
SPECS = (WORKLIST_PHI,)
#: The holdings label the estate headline groups by (report/exposure.py).
SOURCE = "worklist"
#: What a worklist's records are called in summaries (UPS says "workitems").
STEPS = "scheduled procedure steps"


def evidence_of(facts: WorklistFacts, max_records: int) -> Evidence:
    """The counts of one scheduled-work C-FIND; never a value (keywords, counts, years)."""
    return {
        "model": facts.model,
        "patients": facts.distinct_patients,
        "scheduled_items": facts.records,
        "records_without_patient_id": facts.records_without_patient,
        "patients_basis": "distinct PatientID (+ IssuerOfPatientID)",
        "modalities": list(facts.modalities),
        "modality_count": len(facts.modalities),
        "stations": facts.stations,
        "scheduled_year_min": facts.year_min,
        "scheduled_year_max": facts.year_max,
        "scheduled_days": facts.scheduled_days,
        "scheduled_span_days": facts.span_days,
        "phi_attributes": list(facts.identifying),
        "phi_attribute_count": len(facts.identifying),
        "truncated": facts.truncated,
        "max_records": max_records,
    }


def evaluate(
    facts: WorklistFacts,
    spec: CheckSpec,
    endpoint: Endpoint,
    *,
    product: str | None,
    max_records: int,
    noun: str = STEPS,
) -> tuple[Finding, ...]:
    """Pure judgement of the facts: no finding for a refusal; critical with identifying
    attributes (our calling AE is always a fresh random, hence unregistered, title); medium for
    records without them; low for a worklist that answers but holds nothing today."""
    if facts.refused:
        return ()
    evidence = evidence_of(facts, max_records)
    bound = "≥ " if facts.truncated else ""
    patients = facts.distinct_patients
    query = "UPS-RS search" if facts.model == "UPS-RS" else f"{facts.model} C-FIND"
    if facts.records == 0:
        summary, severity = (
            f"{query} permitted for an unknown peer; it returned no records",
            Severity.LOW,
        )
    elif facts.identifying:
        mods = f" ({', '.join(facts.modalities)})" if facts.modalities else ""
        stations = f" on {facts.stations} stations" if facts.stations else ""
        summary = (
            f"{query} returned {bound}{facts.records} {noun} for {bound}{patients} distinct "
            f"patients{stations}{mods}; {len(facts.identifying)} identifying attributes"
        )
        severity = Severity.CRITICAL
    else:
        summary = (
            f"{query} returned {bound}{facts.records} {noun} without identifying attributes"
        )
        severity = Severity.MEDIUM
    holdings = (
        Holdings(patient_records=facts.patients, truncated=facts.truncated, source=SOURCE)
        if facts.records
        else None
    )
    return (
        spec.finding(
            endpoint,
            summary=summary,
            evidence=evidence,
            product=product,
            severity=severity,
            holdings=holdings,
        ),
    )


async def scheduled_work(ctx: DicomContext, sop: str, model: str) -> WorklistFacts | None:
    """Probe ``sop`` on a fresh association with the titles that were accepted; None when the
    service did not accept the context. A fresh association keeps the archive checks' session
    and the honeypot's C-FIND shapes (which expect Q/R answers) untouched."""
    assoc = ctx.accepted
    if assoc is None or sop not in assoc.accepted:
        return None
    async with ctx.association(assoc.called_aet, assoc.calling_aet) as client:
        client.find_observer = None
        if client.context_for(sop) is None:
            return None
        return await probe(client, sop, model, ctx.options.hasher, ctx.options.max_records)


def outcome(facts: WorklistFacts | None, findings: tuple[Finding, ...]) -> CheckOutcome:
    details: Evidence = {"negotiated": facts is not None}
    if facts is None:
        return CheckOutcome(details=details)
    details.update(
        refused=facts.refused,
        refusal=facts.refusal,
        final_status=f"0x{facts.final_status:04X}" if facts.final_status is not None else None,
        records=facts.records,
        truncated=facts.truncated,
    )
    if facts.cancel_ignored:
        return CheckOutcome(
            details=details,
            findings=findings,
            status=AttemptStatus.ERROR,
            reason="peer kept sending C-FIND responses after C-CANCEL; association aborted",
        )
    return CheckOutcome(details=details, findings=findings)


def judge(ctx: DicomContext, facts: WorklistFacts | None, spec: CheckSpec, noun: str = STEPS) -> CheckOutcome:
    """The outcome of one scheduled-work probe: :func:`evaluate` under ``spec`` (nothing when the
    service did not accept the context) with the probe's details."""
    findings = (
        ()
        if facts is None
        else evaluate(
            facts,
            spec,
            ctx.endpoint_for_findings(),
            product=ctx.product,
            max_records=ctx.options.max_records,
            noun=noun,
        )
    )
    return outcome(facts, findings)


async def run(ctx: DicomContext) -> CheckOutcome:
    if ctx.accepted is None:
        return skipped("no accepted association")
    return judge(ctx, await scheduled_work(ctx, MWL_FIND, "MWL"), WORKLIST_PHI)


CHECK: Check[DicomContext] = Check(name="dicom.worklist", specs=SPECS, run=run)
