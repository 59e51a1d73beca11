"""DICOM-TLS configuration (PS3.15 Annex B): delegated to the shared TLS audit in pacsradar.tls."""

from __future__ import annotations

import importlib

from pacsradar.checks import Check, CheckOutcome, skipped
from pacsradar.dicom.context import DicomContext
from pacsradar.models import AttemptStatus

SPECS = ()


async def run(ctx: DicomContext) -> CheckOutcome:
    if ctx.service != "dicom-tls":
        return skipped("service is not DICOM-TLS")
    try:
        audit_tls = getattr(importlib.import_module("pacsradar.tls"), "audit_tls", None)
    except ModuleNotFoundError:
        audit_tls = None
    if audit_tls is None:
        return skipped("TLS audit module not available")
    attempt, findings = await audit_tls(
        ctx.endpoint.host,
        ctx.endpoint.port,
        limits=ctx.options.limits,
        net=ctx.net,
        protocol="dicom-tls",
        product=ctx.product,
    )
    return CheckOutcome(
        details=dict(attempt.details),
        findings=tuple(findings),
        status=AttemptStatus(attempt.status),
        reason=attempt.reason,
    )


CHECK: Check[DicomContext] = Check(name="dicom.tls", specs=SPECS, run=run)
