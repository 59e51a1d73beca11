"""Unified Procedure Step exposure: workitems listed to anyone (PS3.4 Annex CC).

A UPS SCP answers C-FIND on the UPS Pull (1.2.840.10008.5.1.4.34.6.3) or Watch
(1.2.840.10008.5.1.4.34.6.2) SOP class with its workitems: patient, procedure step state and
scheduled start. One bounded universal C-FIND (C-CANCEL at ``--max-records``) on the first of
them the service accepted, reduced to the same facts and judgement as the Modality Worklist
(:mod:`pacsradar.dicom.checks.worklist`); the holdings count as scheduled in the headline.
"""

from __future__ import annotations

from pacsradar.checks import Check, CheckOutcome, CheckSpec, Reference, skipped
from pacsradar.dicom.checks.worklist import PHI_REFERENCES, WORKLIST_POLICY, judge, scheduled_work
from pacsradar.dicom.context import DicomContext
from pacsradar.dicom.sop import UPS_PULL, UPS_WATCH
from pacsradar.models import Severity

PS34_UPS = Reference(
    title="DICOM PS3.4 Annex CC: Unified Procedure Step Service and SOP Classes",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part04.html#chapter_CC",
)

UPS_PHI = CheckSpec(
    id="DICOM-UPS-PHI",
    title="DICOM Unified Procedure Step C-FIND returns workitems to an unknown peer",
    severity=Severity.CRITICAL,
    category="dicom",
    description=(
        "A universal UPS C-FIND (PS3.4 Annex CC, UPS Pull or Watch) from an unregistered AE title "
        "returned workitems with identifying attributes (PS3.15 Annex E): anyone who can reach "
        "the port can list the patients whose procedures are scheduled."
    ),
    remediation=(
        "Answer UPS queries only for registered performers (calling AE title bound to its host "
        "address), restrict the port, and use DICOM TLS with client certificates."
    ),
    product_remediation=WORKLIST_POLICY,
    references=(PS34_UPS, *PHI_REFERENCES),
    cwe="CWE-359",
)
SPECS = (UPS_PHI,)


async def run(ctx: DicomContext) -> CheckOutcome:
    assoc = ctx.accepted
    if assoc is None:
        return skipped("no accepted association")
    sop = next((s for s in (UPS_PULL, UPS_WATCH) if s in assoc.accepted), None)
    facts = await scheduled_work(ctx, sop, "UPS") if sop else None
    return judge(ctx, facts, UPS_PHI, noun="workitems")


CHECK: Check[DicomContext] = Check(name="dicom.ups", specs=SPECS, run=run)
