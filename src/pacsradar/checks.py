"""What a check is: its stable spec (id, severity, remediation, references) and how it runs.

A check module defines one or more :class:`CheckSpec` objects and one :class:`Check` that runs
against a protocol context (or a :class:`Unit` when it builds its own envelope, as the file and
share audits do). :mod:`pacsradar.registry` lists them: adding a check is one module, one
registry line and its tests.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pacsradar.errors import ScanError
from pacsradar.models import (
    Attempt,
    AttemptStatus,
    Endpoint,
    EvidenceValue,
    Finding,
    Holdings,
    Reference,
    Severity,
)

__all__ = [
    "GDPR_ART32",
    "HIPAA_ACCESS",
    "HIPAA_TRANSMISSION",
    "PS34_QR",
    "PS37_USER_IDENTITY",
    "PS38_ACSE",
    "PS315_ANNEX_B",
    "PS315_ANNEX_E",
    "Check",
    "CheckOutcome",
    "CheckSpec",
    "Reference",
    "Unit",
    "cwe",
    "internal_error",
    "log_internal",
    "skipped",
]

log = logging.getLogger(__name__)

# Shared references, cited by many checks.
PS315_ANNEX_B = Reference(
    title="DICOM PS3.15 Annex B: Secure Transport Connection Profiles",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part15.html#chapter_B",
)
PS315_ANNEX_E = Reference(
    title="DICOM PS3.15 Annex E: Attribute Confidentiality Profiles",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part15.html#chapter_E",
)
PS38_ACSE = Reference(
    title="DICOM PS3.8 §7.1 / §9.3: A-ASSOCIATE service and PDUs",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part08.html#sect_9.3.2",
)
PS37_USER_IDENTITY = Reference(
    title="DICOM PS3.7 D.3.3.7: User Identity Negotiation",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part07.html#sect_D.3.3.7",
)
PS34_QR = Reference(
    title="DICOM PS3.4 Annex C: Query/Retrieve Service Class",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part04.html#chapter_C",
)
HIPAA_ACCESS = Reference(
    title="HIPAA Security Rule 45 CFR §164.312(a)(1) Access control",
    url="https://www.ecfr.gov/current/title-45/section-164.312",
)
HIPAA_TRANSMISSION = Reference(
    title="HIPAA Security Rule 45 CFR §164.312(e)(1) Transmission security",
    url="https://www.ecfr.gov/current/title-45/section-164.312",
)
GDPR_ART32 = Reference(
    title="GDPR Art. 32: Security of processing",
    url="https://gdpr-info.eu/art-32-gdpr/",
)


def cwe(number: int) -> Reference:
    return Reference(title=f"CWE-{number}", url=f"https://cwe.mitre.org/data/definitions/{number}.html")


@dataclass(frozen=True)
class CheckSpec:
    """The stable description of one kind of finding."""

    id: str
    title: str
    severity: Severity
    category: str
    description: str
    remediation: str
    product_remediation: Mapping[str, str] = field(default_factory=dict)
    references: tuple[Reference, ...] = ()
    cwe: str | None = None
    intrusive: bool = False
    #: when a finding's severity may differ from ``severity``, what decides it (``pacsradar
    #: checks`` shows it next to the default, so a critical CVE finding is no surprise)
    severity_varies: str | None = None

    def remediation_for(self, product: str | None) -> str:
        """Generic advice plus the product-specific steps when we know the product."""
        key = (self.id, product)
        text = _REMEDIATION_MEMO.get(key)
        if text is None:
            text = self.remediation
            if product:
                for name, extra in self.product_remediation.items():
                    if name.lower() in product.lower():
                        text = f"{self.remediation} {extra}"
                        break
            if len(_REMEDIATION_MEMO) < 4096:  # products are few; the bound is for hostile names
                _REMEDIATION_MEMO[key] = text
        return text

    def finding(
        self,
        endpoint: Endpoint,
        *,
        summary: str,
        evidence: Mapping[str, EvidenceValue] | None = None,
        product: str | None = None,
        severity: Severity | None = None,
        holdings: Holdings | None = None,
        severity_reason: str | None = None,
    ) -> Finding:
        """A finding of this check. A ``severity`` other than the check's default carries
        ``evidence["severity_basis"]``: why this endpoint's finding is rated otherwise than
        ``pacsradar checks`` lists the check (``severity_reason``, else the general rule)."""
        details = dict(evidence or {})
        if severity is not None and severity is not self.severity:
            why = severity_reason or self.severity_varies or "what this endpoint showed (see the summary)"
            direction = "raised" if severity.rank > self.severity.rank else "lowered"
            details["severity_basis"] = (
                f"{severity.value}: {direction} from the check's {self.severity.value} by {why}"
            )
        return Finding(
            check_id=self.id,
            title=self.title,
            severity=severity or self.severity,
            endpoint=endpoint,
            summary=summary,
            evidence=details,
            remediation=self.remediation_for(product),
            references=self.references,
            cwe=self.cwe,
            product=product,
            holdings=holdings,
        )


#: (check id, product) -> remediation text; a sweep asks the same few questions thousands of times.
_REMEDIATION_MEMO: dict[tuple[str, str | None], str] = {}

CtxT = TypeVar("CtxT")


@dataclass(frozen=True)
class CheckOutcome:
    """What a check's ``run`` returns: details for the attempt plus any findings."""

    details: Mapping[str, EvidenceValue] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    status: AttemptStatus = AttemptStatus.COMPLETED
    reason: str | None = None


def internal_error(exc: BaseException) -> str:
    """The reason of an error attempt for an unexpected exception: its type only.

    The message of an unexpected exception may quote what a peer sent (a header, an AE title,
    a file name), so it never reaches a finding, a report or the store; the traceback goes to
    the debug log only (HACKING.md rule 1).
    """
    return f"internal error: {type(exc).__name__}"


def log_internal(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """At debug level only: where ``exc`` was raised (frames, never the exception's message)."""
    if logger.isEnabledFor(logging.DEBUG):
        frames = "".join(traceback.format_tb(exc.__traceback__))
        logger.debug("%s raised %s\n%s", what, type(exc).__name__, frames.rstrip())


def skipped(reason: str, **details: int | str | bool | None) -> CheckOutcome:
    return CheckOutcome(details=dict(details), status=AttemptStatus.SKIPPED, reason=reason)


@dataclass(frozen=True)
class Unit:
    """A unit of work that builds its own attempt envelope (the file and share audits), declared
    to the registry as a :class:`Check` is: attempt name, the specs it can report, intrusiveness."""

    name: str
    specs: tuple[CheckSpec, ...]
    intrusive: bool = False
    intrusive_step: str | None = None


@dataclass(frozen=True)
class Check(Generic[CtxT]):
    """A runnable check. ``name`` is the attempt id (e.g. ``dicom.query``)."""

    name: str
    specs: tuple[CheckSpec, ...]
    run: Callable[[CtxT], Awaitable[CheckOutcome]]
    #: the whole check sends more than reads: every auditor skips it without ``--intrusive``
    intrusive: bool = False
    #: a step of an otherwise safe check that runs only with ``--intrusive`` (what it sends)
    intrusive_step: str | None = None

    async def attempt(self, ctx: CtxT) -> tuple[Attempt, tuple[Finding, ...]]:
        """Run the check and wrap the result in an envelope.

        A :class:`ScanError` (its message is ours) becomes an error attempt with that message;
        any other exception (a bug, or a peer that broke an assumption) becomes an error attempt
        ``internal error: <type>``, so one check never costs the endpoint's other checks.
        """
        start = time.monotonic()
        try:
            outcome = await self.run(ctx)
        except ScanError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            log_internal(log, f"check {self.name}", exc)
            reason = internal_error(exc)
        else:
            return (
                Attempt(
                    check=self.name,
                    status=outcome.status,
                    reason=outcome.reason,
                    duration_ms=(time.monotonic() - start) * 1000,
                    details=dict(outcome.details),
                ),
                outcome.findings,
            )
        return (
            Attempt(
                check=self.name,
                status=AttemptStatus.ERROR,
                reason=reason,
                duration_ms=(time.monotonic() - start) * 1000,
            ),
            (),
        )
