"""User Identity Negotiation (PS3.7 D.3.3.7): is a bogus username/passcode accepted?

We ask for a positive response. A server that answers the request positively claims to have
verified credentials it cannot know; one that simply accepts the association does not enforce
user identity at all.
"""

from __future__ import annotations

from pacsradar.checks import (
    GDPR_ART32,
    HIPAA_ACCESS,
    PS37_USER_IDENTITY,
    Check,
    CheckOutcome,
    CheckSpec,
    cwe,
    skipped,
)
from pacsradar.dicom.client import AssociationKind, describe_rj
from pacsradar.dicom.context import DicomContext, bogus_identity
from pacsradar.dicom.sop import VERIFICATION, probe_contexts
from pacsradar.models import Evidence, Severity

IDENTITY_IGNORED = CheckSpec(
    id="DICOM-USER-IDENTITY-IGNORED",
    title="DICOM association accepted with bogus user credentials",
    severity=Severity.MEDIUM,
    severity_varies="high when a positive User Identity response is returned",
    category="dicom",
    description=(
        "An association carrying a made-up username and passcode (User Identity Negotiation, "
        "positive response requested) was accepted."
    ),
    remediation=(
        "If the product supports user identity (Kerberos, SAML, JWT or username/passcode), "
        "require and verify it; otherwise do not rely on it and enforce peers by AE, host and TLS."
    ),
    references=(PS37_USER_IDENTITY, HIPAA_ACCESS, GDPR_ART32, cwe(287)),
    cwe="CWE-287",
)
SPECS = (IDENTITY_IGNORED,)


async def run(ctx: DicomContext) -> CheckOutcome:
    assoc = ctx.accepted
    if assoc is None:
        return skipped("no accepted association to compare with")
    probe = ctx.identity_probe
    if probe is None or (probe.called_aet, probe.calling_aet) != (assoc.called_aet, assoc.calling_aet):
        # The accepted titles came from guessing: ask again with them and a bogus identity.
        verification = tuple(c for c in probe_contexts() if c.abstract_syntax == VERIFICATION)
        async with ctx.association(
            assoc.called_aet, assoc.calling_aet, verification, user_identity=bogus_identity()
        ) as client:
            probe = client.assoc
    assert probe is not None
    if probe.kind is not AssociationKind.ACCEPTED:
        detail = describe_rj(probe) if probe.kind is AssociationKind.REJECTED else "aborted"
        return CheckOutcome(details={"bogus_identity_accepted": False, "answer": detail})
    details: Evidence = {
        "bogus_identity_accepted": True,
        "positive_response_returned": probe.user_identity_response,
    }
    if probe.user_identity_response:
        summary = "Server returned a positive User Identity response for made-up credentials"
        severity = Severity.HIGH
    else:
        summary = "Association with made-up credentials accepted (user identity not enforced)"
        severity = Severity.MEDIUM
    finding = IDENTITY_IGNORED.finding(
        ctx.endpoint_for_findings(), summary=summary, evidence=details, product=ctx.product, severity=severity
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[DicomContext] = Check(name="dicom.identity", specs=SPECS, run=run)
