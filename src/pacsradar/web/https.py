"""TLS-WEAK / TLS-CERTIFICATE for HTTPS endpoints, via :mod:`pacsradar.tls` (same probes as
DICOM-TLS). Plain HTTP is WEB-PLAINTEXT's business; this check skips it."""

from __future__ import annotations

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.errors import ProtocolError
from pacsradar.tls.audit import SPECS as TLS_SPECS
from pacsradar.tls.audit import findings_for, run_tls_audit
from pacsradar.web.context import WebContext

#: The TLS specs are defined (and registered) in pacsradar.tls.audit; listed here for reference.
SPECS: tuple[CheckSpec, ...] = TLS_SPECS


async def _run(ctx: WebContext) -> CheckOutcome:
    if ctx.scheme != "https":
        return skipped("plain HTTP: no TLS to audit (see WEB-PLAINTEXT)")
    result = await run_tls_audit(ctx.net, ctx.endpoint.host, ctx.endpoint.port)
    if not result.tls:
        raise ProtocolError(f"no TLS handshake: {result.failure or 'no ServerHello'}")
    return CheckOutcome(
        details=result.details(),
        findings=findings_for(result, ctx.endpoint, product=ctx.product_label),
    )


CHECK: Check[WebContext] = Check(name="web.tls", specs=SPECS, run=_run)

__all__ = ["CHECK", "SPECS"]
