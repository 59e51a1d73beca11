"""Store exposure, from negotiation alone: storage contexts accepted for an unknown peer.

No C-STORE is ever sent (safe by default). A server that would accept images from anyone can be
fed forged studies (data poisoning, CVE-2019-11687-style polyglots) and filled up.
"""

from __future__ import annotations

from pacsradar.checks import (
    GDPR_ART32,
    HIPAA_ACCESS,
    Check,
    CheckOutcome,
    CheckSpec,
    cwe,
    skipped,
)
from pacsradar.dicom.checks._remediation import AE_POLICY
from pacsradar.dicom.checks.retrieve import UNVERIFIED
from pacsradar.dicom.context import DicomContext
from pacsradar.dicom.sop import CANARY_SYNTAX, NAMES, STORAGE
from pacsradar.models import Evidence, Reference, Severity

STORE_OPEN = CheckSpec(
    id="DICOM-STORE-OPEN",
    title="DICOM storage (C-STORE) offered to an unknown peer",
    severity=Severity.MEDIUM,
    category="dicom",
    description=(
        "The service accepted image storage presentation contexts from an unregistered AE title: "
        "anyone who can reach it can inject images (integrity and availability risk)."
    ),
    remediation="Accept C-STORE only from registered modalities bound to their host addresses.",
    product_remediation=AE_POLICY,
    references=(
        Reference(
            title="DICOM PS3.4 Annex B: Storage Service Class",
            url="https://dicom.nema.org/medical/dicom/current/output/html/part04.html#chapter_B",
        ),
        HIPAA_ACCESS,
        GDPR_ART32,
        cwe(284),
    ),
    cwe="CWE-284",
)
SPECS = (STORE_OPEN,)


async def run(ctx: DicomContext) -> CheckOutcome:
    assoc = ctx.accepted
    if assoc is None:
        return skipped("no accepted association")
    classes = sorted(NAMES[s] for s in STORAGE if s in assoc.accepted)
    details: Evidence = {"storage_negotiated": classes, "c_store_sent": False}
    if not classes:
        return CheckOutcome(details=details)
    summary = f"{len(classes)} of {len(STORAGE)} probed storage SOP classes accepted (negotiation only)"
    severity = STORE_OPEN.severity
    # An acceptor that also took our random 2.25 abstract syntax accepts every context (odil's
    # default acceptor): its storage contexts say nothing about whether it would store.
    any_syntax = CANARY_SYNTAX in assoc.accepted
    details["any_abstract_syntax_accepted"] = any_syntax
    if any_syntax:
        summary = f"{summary}, {UNVERIFIED}"
        severity = Severity.LOW
    finding = STORE_OPEN.finding(
        ctx.endpoint_for_findings(),
        summary=summary,
        evidence=details,
        product=ctx.product,
        severity=severity,
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[DicomContext] = Check(name="dicom.store", specs=SPECS, run=run)
