"""Service detection: does the endpoint speak DICOM, and how does it answer a stranger?

We send one A-ASSOCIATE-RQ (PS3.8 §9.3.2) with random called and calling AE titles and our
probe presentation contexts. The answer is AC, RJ (result/source/reason recorded exactly,
PS3.8 §9.3.4), A-ABORT, something that is not DICOM, or nothing. A peer that drops the
plaintext attempt but completes a TLS handshake is DICOM-TLS (PS3.15 Annex B), not 'closed'.
"""

from __future__ import annotations

import asyncio

from pacsradar.checks import (
    GDPR_ART32,
    PS38_ACSE,
    Check,
    CheckOutcome,
    CheckSpec,
    skipped,
)
from pacsradar.config import TLS_FIRST_PORTS
from pacsradar.dicom.client import (
    AssociationKind,
    AssociationResult,
    DicomClient,
    UserIdentity,
    describe_rj,
)
from pacsradar.dicom.context import DicomContext, bogus_identity, random_aet
from pacsradar.dicom.fingerprint import identify
from pacsradar.dicom.sop import NAMES
from pacsradar.errors import (
    ConnectError,
    ConnectTimeout,
    NotDicomError,
    PeerClosed,
    ScanError,
    TlsHandshakeError,
)
from pacsradar.models import Evidence, Severity
from pacsradar.net import insecure_tls_context

SERVICE_EXPOSED = CheckSpec(
    id="DICOM-SERVICE-EXPOSED",
    title="DICOM service reachable",
    severity=Severity.INFO,
    category="dicom",
    description="A DICOM Upper Layer service answered an association request from this scanner.",
    remediation=(
        "Confirm the service must be reachable from this network; otherwise restrict it with a "
        "firewall or VPN to the modalities and workstations that need it."
    ),
    references=(PS38_ACSE, GDPR_ART32),
)
SPECS = (SERVICE_EXPOSED,)

#: PS3.8 §9.3.4: result 2 is rejected-transient; pynetdicom answers it when its association
#: slots are full. Retry a few times so 'busy' is not mistaken for an AE-title check.
TRANSIENT_RETRIES = 3


async def _open(
    ctx: DicomContext, called: str, calling: str, identity: UserIdentity | None
) -> tuple[DicomClient, AssociationResult]:
    for attempt in range(TRANSIENT_RETRIES + 1):
        session = await ctx.open_session(called, calling, user_identity=identity)
        assert session.assoc is not None
        if not session.assoc.transient or attempt == TRANSIENT_RETRIES:
            return session, session.assoc
        await asyncio.sleep(0.3 * 2**attempt)
    raise AssertionError("unreachable")


async def _associate(ctx: DicomContext, tls: bool) -> AssociationResult:
    """Random titles plus a bogus User Identity: one association answers both questions when
    the server accepts (the common, exposed case). If it refuses, we ask once more without the
    identity item, so an identity check is never mistaken for an AE-title check."""
    ctx.tls = insecure_tls_context() if tls else None
    called, calling = random_aet(), random_aet()
    session, result = await _open(ctx, called, calling, bogus_identity())
    ctx.identity_probe = result
    if result.kind is not AssociationKind.ACCEPTED and not result.transient:
        session, result = await _open(ctx, called, calling, None)
    elif result.transient:
        # pynetdicom answers a User Identity its handler refuses with rejected-transient (2, 2,
        # 1), as if busy (pynetdicom acse.py): one plain attempt tells the two apart.
        plain = await ctx.open_session(called, calling)
        if plain.assoc is not None and plain.assoc.kind is AssociationKind.ACCEPTED:
            session, result = plain, plain.assoc
    ctx.session = session if result.kind is AssociationKind.ACCEPTED else None
    return result


async def run(ctx: DicomContext) -> CheckOutcome:
    tls_first = ctx.endpoint.port in TLS_FIRST_PORTS
    modes = (True, False) if tls_first else (False, True)
    result: AssociationResult | None = None
    last_error: ScanError | None = None
    for index, tls in enumerate(modes):
        try:
            result = await _associate(ctx, tls)
            break
        except TlsHandshakeError as exc:
            last_error = exc  # the port is open but no TLS: plaintext may still work
        except ConnectError as exc:  # TCP level (TLS failures were caught above)
            if index == 0:
                ctx.reachable = False
                if isinstance(exc, ConnectTimeout):
                    # Filtered or down, not closed: "could not test", so a stored finding on
                    # this endpoint is not marked resolved by a timeout.
                    raise
                return skipped("port closed or unreachable", error=str(exc))
            last_error = exc
        except NotDicomError as exc:
            if exc.kind == "tls" and not tls:
                last_error = exc
                continue  # answered our plaintext with a TLS record: try a handshake
            ctx.service = exc.kind
            return CheckOutcome(
                details={"dicom": False, "answered_with": exc.kind, "tls": tls},
                reason="not DICOM",
            )
        except PeerClosed as exc:
            if not tls:
                last_error = exc
                continue  # plaintext dropped: the DICOM-TLS signature (PS3.15 B.1)
            last_error = exc
    if result is None:
        ctx.tls = None
        assert last_error is not None
        raise last_error

    ctx.service = ctx.protocol
    ctx.first = result
    details: Evidence = {
        "dicom": True,
        "tls": ctx.tls is not None,
        "association": result.kind.value,
    }
    if result.kind is AssociationKind.REJECTED:
        details.update(
            rj_result=result.rj_result,
            rj_source=result.rj_source,
            rj_reason=result.rj_reason,
            rj_meaning=describe_rj(result),
        )
    elif result.kind is AssociationKind.ABORTED:
        details.update(abort_source=result.abort_source, abort_reason=result.abort_reason)
    else:
        ctx.accepted = result
        ctx.fingerprint = identify(result.implementation_class_uid, result.implementation_version_name)
        details.update(
            implementation_class_uid=result.implementation_class_uid,
            implementation_version_name=result.implementation_version_name,
            max_pdu=result.max_pdu,
            product=ctx.fingerprint.label,
            fingerprint_confidence=ctx.fingerprint.confidence,
            accepted_contexts=sorted(NAMES.get(uid, uid) for uid in result.accepted),
        )
    summary = (
        f"DICOM{'-TLS' if ctx.tls else ''} service answered A-ASSOCIATE-RQ with {result.kind.value.upper()}"
    )
    if ctx.fingerprint:
        summary += f"; implementation: {ctx.fingerprint.label}"
    finding = SERVICE_EXPOSED.finding(
        ctx.endpoint_for_findings(), summary=summary, evidence=details, product=ctx.product
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[DicomContext] = Check(name="dicom.service", specs=SPECS, run=run)
