"""Association policy: does the service accept random called *and* calling AE titles?

The AE title is DICOM's only built-in peer identification (PS3.8 §7.1.1.3-4); a service that
accepts titles it cannot know does no peer authorisation at all. This is the check that
surveys find failed by 99.6 % of internet-facing DICOM servers.
"""

from __future__ import annotations

from pacsradar.checks import (
    GDPR_ART32,
    HIPAA_ACCESS,
    PS38_ACSE,
    Check,
    CheckOutcome,
    CheckSpec,
    cwe,
    skipped,
)
from pacsradar.dicom.checks._remediation import AE_POLICY
from pacsradar.dicom.client import AssociationKind, describe_rj
from pacsradar.dicom.context import DicomContext
from pacsradar.models import Severity

ANY_AE = CheckSpec(
    id="DICOM-ANY-AE",
    title="DICOM service accepts any AE title",
    severity=Severity.HIGH,
    category="dicom",
    description=(
        "The service accepted an association whose called and calling AE titles were random "
        "strings: it does not check who is calling, so anyone who can reach the port is a peer."
    ),
    remediation=(
        "Enable called-AE checking and allow only registered calling AE titles from known hosts; "
        "restrict the port to the modalities and workstations that need it."
    ),
    product_remediation=AE_POLICY,
    references=(PS38_ACSE, HIPAA_ACCESS, GDPR_ART32, cwe(306)),
    cwe="CWE-306",
)
SPECS = (ANY_AE,)


async def run(ctx: DicomContext) -> CheckOutcome:
    first = ctx.first
    if first is None:
        return skipped("no DICOM association answer to judge")
    if first.kind is AssociationKind.ACCEPTED:
        details = {"accepts_random_called_aet": True, "accepts_random_calling_aet": True}
        finding = ANY_AE.finding(
            ctx.endpoint_for_findings(),
            summary="Association accepted with random called and calling AE titles",
            evidence=details,
            product=ctx.product,
        )
        return CheckOutcome(details=details, findings=(finding,))
    if first.kind is AssociationKind.REJECTED:
        # PS3.8 Table 9-21 reason 7 (called AE not recognised) or 3 (calling AE not recognised).
        # Some servers (dcmqrscp) give 7 for an unknown *calling* AE too: infer no more than that.
        return CheckOutcome(
            details={
                "accepts_random_called_aet": False,
                "rejection": describe_rj(first),
                "transient": first.transient,
            }
        )
    return CheckOutcome(details={"accepts_random_called_aet": False, "association": "aborted"})


CHECK: Check[DicomContext] = Check(name="dicom.any_ae", specs=SPECS, run=run)
