"""The DICOM auditor: runs the DICOM checks, in registry order, against one endpoint."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pacsradar.checks import Check, CheckSpec
from pacsradar.config import ScanOptions
from pacsradar.engine import AuditContext
from pacsradar.models import Attempt, AttemptStatus, Endpoint, Finding, TargetResult

if TYPE_CHECKING:
    # The DICOM stack (Upper Layer, DIMSE, facts, fingerprints, honeypot tells) and the checks
    # are imported on the first endpoint that answers, not with the auditor: a scan whose DICOM
    # ports are all closed never pays for them (start-up, issue 11).
    from pacsradar.dicom.context import DicomContext

log = logging.getLogger(__name__)


class DicomAuditor:
    name = "dicom"
    #: The engine's TCP gate connects first; our first connection takes over its socket.
    gate = True

    def __init__(self, checks: Sequence[Check[DicomContext]] | None = None) -> None:
        self._checks = tuple(checks) if checks is not None else None
        self._spec_map: dict[str, CheckSpec] | None = None

    @property
    def checks(self) -> tuple[Check[DicomContext], ...]:
        if self._checks is None:
            from pacsradar.registry import dicom_checks

            self._checks = tuple(dicom_checks())
        return self._checks

    @property
    def _specs(self) -> dict[str, CheckSpec]:
        if self._spec_map is None:
            self._spec_map = {spec.id: spec for check in self.checks for spec in check.specs}
        return self._spec_map

    def wants(self, endpoint: Endpoint, prior: Sequence[TargetResult], options: ScanOptions) -> bool:
        if "dicom" not in options.only:
            return False
        return options.tries(endpoint.port, options.dicom_ports)

    def _relabel(self, finding: Finding, product: str) -> Finding:
        spec = self._specs.get(finding.check_id)
        update: dict[str, str] = {"product": product}
        if spec is not None:
            update["remediation"] = spec.remediation_for(product)
        return finding.model_copy(update=update)

    async def audit(self, endpoint: Endpoint, actx: AuditContext) -> TargetResult:
        started = datetime.now(UTC)
        t0 = time.monotonic()
        attempts: list[Attempt] = []
        findings: list[Finding] = []
        debug = log.isEnabledFor(logging.DEBUG)
        from pacsradar.dicom.context import DicomContext

        async with contextlib.AsyncExitStack() as stack:
            ctx = DicomContext(endpoint=endpoint, options=actx.options, net=actx.net, stack=stack)
            for check in self.checks:
                if check.intrusive and not actx.options.intrusive:
                    continue
                attempt, found = await check.attempt(ctx)
                if debug:
                    label, status = endpoint.label, attempt.status.value
                    log.debug("%s %s: %s %s", label, attempt.check, status, attempt.reason or "")
                if not ctx.reachable:
                    # A refused port has nothing to report; a timeout keeps its error attempt.
                    kept = (attempt,) if attempt.status is AttemptStatus.ERROR else ()
                    return TargetResult(
                        endpoint=endpoint, reachable=False, error=attempt.reason, attempts=kept
                    )
                if ctx.service not in (None, "dicom", "dicom-tls"):
                    # Not DICOM (e.g. an HTTP server on port 104): hand over, run nothing else.
                    attempts.append(attempt)
                    break
                attempts.append(attempt)
                findings.extend(found)
                if ctx.first is None and attempt.status is AttemptStatus.ERROR:
                    break  # no DICOM answer at all: the remaining checks cannot run
        if findings and not actx.options.count_honeypots:
            from pacsradar.dicom.honeypot.score import mark_suspects

            # Above --honeypot-threshold every finding of the service is marked, and exposure
            # totals leave it out; --count-honeypots keeps the score but marks nothing.
            findings = list(mark_suspects(findings))
        protocol = ctx.protocol if ctx.service in ("dicom", "dicom-tls") else "unknown"
        product = ctx.product
        if product is not None:
            # Later checks may name the product better than the A-ASSOCIATE-AC did (Orthanc
            # behind DCMTK's UID, dicom.fingerprint.refine): every finding carries the final name.
            findings = [f if f.product in (None, product) else self._relabel(f, product) for f in findings]
        error = next((a.reason for a in attempts if a.status is AttemptStatus.ERROR), None)
        return TargetResult(
            endpoint=Endpoint(host=endpoint.host, port=endpoint.port, protocol=protocol),  # type: ignore[arg-type]
            reachable=True,
            service=ctx.service,
            product=product,
            attempts=tuple(attempts),
            findings=tuple(findings),
            error=error,
            started_at=started,
            duration_ms=(time.monotonic() - t0) * 1000,
        )
