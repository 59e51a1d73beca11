"""Called-AE guessing, only after the 'accepts anything' pre-check was rejected.

A server that accepts everything is reported once as DICOM-ANY-AE, never as dozens of guessed
titles. For a server that rejected random titles we try vendor defaults (and the user's
``--aet-wordlist``) as the *called* AE with a random *calling* AE, one association each, stopping
at the first that is accepted.
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
from pacsradar.dicom.context import DicomContext, random_aet
from pacsradar.dicom.fingerprint import identify
from pacsradar.errors import ScanError
from pacsradar.models import Evidence, Severity

#: Vendor and tutorial default AE titles (product docs and sample configs).
DEFAULT_AETS: tuple[str, ...] = (
    "ANY-SCP",
    "ORTHANC",
    "DCM4CHEE",
    "DCM4CHEE_ARC",
    "STORESCP",
    "DCMQRSCP",
    "QRSCP",
    "COMMON",
    "ACME_STORE",
    "CONQUESTSRV1",
    "PACS",
    "PACS_SCP",
    "SCP",
    "STORE_SCP",
    "DICOM",
    "OSIRIX",
    "HOROS",
    "DICOOGLE",
    "CLEARCANVAS",
    "SERVERAE",
    "ARCHIVE",
    "AE_TITLE",
    "MODALITY",
    "WORKLIST",
    # DCMTK's wlmscpfs serves the called AE titles named by its --data-files-path folders; its
    # documentation and Debian's example database (dcmtk/examples/wlistdb) use OFFIS.
    "OFFIS",
    "WLMSCPFS",
    "MWL",
    "ECHOSCU",
)

AE_GUESSABLE = CheckSpec(
    id="DICOM-AE-GUESSABLE",
    title="DICOM called AE title is a guessable default",
    severity=Severity.MEDIUM,
    category="dicom",
    description=(
        "The service rejects unknown called AE titles but accepted a vendor-default title with a "
        "random calling AE: the called-AE check is the only gate, and it is guessable."
    ),
    remediation=(
        "Do not rely on the called AE title as a secret; enforce a calling-AE allow-list bound to "
        "host addresses, and change default AE titles."
    ),
    product_remediation=AE_POLICY,
    references=(PS38_ACSE, HIPAA_ACCESS, GDPR_ART32, cwe(1392)),
    cwe="CWE-1392",
)
SPECS = (AE_GUESSABLE,)


def wordlist(extra: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for aet in (*extra, *DEFAULT_AETS):
        aet = aet.strip()
        # PS3.5 Table 6.2-1: AE is at most 16 characters, no backslash or control characters.
        if aet and len(aet) <= 16 and "\\" not in aet and aet.isprintable():
            seen.setdefault(aet, None)
    return tuple(seen)


async def run(ctx: DicomContext) -> CheckOutcome:
    first = ctx.first
    if first is None:
        return skipped("no DICOM association answer to judge")
    if first.kind is AssociationKind.ACCEPTED:
        return skipped("random AE titles were accepted (DICOM-ANY-AE); guessing is meaningless")
    if first.kind is not AssociationKind.REJECTED or first.transient:
        return skipped("pre-check did not end in a permanent rejection")
    if (first.rj_source, first.rj_reason) == (2, 2):
        # PS3.8 Table 9-21: "protocol version not supported" answers the version field, and ours
        # is 1, the only one there is: the refusal is not about AE titles (dicompot with AE
        # enforcement answers every wrong title so, after a fixed delay). Guessing cannot help.
        return skipped("rejected as 'protocol version not supported': not an AE-title check")
    tried = 0
    reasons: dict[str, int] = {}
    for aet in wordlist(ctx.options.aet_wordlist):
        tried += 1
        try:
            session = await ctx.open_session(aet, random_aet())
        except ScanError as exc:
            return CheckOutcome(
                details={"tried": tried, "stopped": type(exc).__name__},
                reason="guessing stopped by a network error",
            )
        assert session.assoc is not None
        if session.assoc.kind is AssociationKind.ACCEPTED:
            ctx.session = session
            ctx.accepted = session.assoc
            ctx.guessed_aet = aet
            ctx.fingerprint = identify(
                session.assoc.implementation_class_uid, session.assoc.implementation_version_name
            )
            details: Evidence = {"tried": tried, "guessed_called_aet": aet, "calling_aet": "random"}
            finding = AE_GUESSABLE.finding(
                ctx.endpoint_for_findings(),
                summary=f"Called AE title '{aet}' (a default) accepted with a random calling AE",
                evidence=details,
                product=ctx.product,
            )
            return CheckOutcome(details=details, findings=(finding,))
        meaning = describe_rj(session.assoc)
        reasons[meaning] = reasons.get(meaning, 0) + 1
    return CheckOutcome(
        details={
            "tried": tried,
            "accepted": False,
            "rejections": [f"{n}x {m}" for m, n in reasons.items()],
        }
    )


CHECK: Check[DicomContext] = Check(name="dicom.aet_guess", specs=SPECS, run=run)
