"""Web checks against hand-built facts: no server, no traffic (the client is never used)."""

from __future__ import annotations

import pytest

from pacsradar.config import Limits, ScanOptions
from pacsradar.models import AttemptStatus, Endpoint, Severity
from pacsradar.net import Net
from pacsradar.web import cve, plaintext
from pacsradar.web.context import HostBudget, WebContext
from pacsradar.web.facts import GENERIC_DICOMWEB, FingerprintResult, QidoResult

ENDPOINT = Endpoint(host="192.0.2.10", port=8042, protocol="http")


def fingerprint(product: str | None, version: str | None = None) -> FingerprintResult:
    return FingerprintResult(
        product=product, version=version, components=(), confidence="verified" if product else None,
        auth_required=False, login_form=False, server=None, probes=2, probe_errors=0, matched=(),
    )  # fmt: skip


def context(fp: FingerprintResult | None, **facts: object) -> WebContext:
    """A context whose client is built (no connection happens until a request) and never used."""
    from pacsradar.web.client import WebClient

    options = ScanOptions()
    client = WebClient(ENDPOINT.host, ENDPOINT.port, "http", net=Net(Limits()), limits=Limits(), deadline=0.0)
    ctx = WebContext(
        endpoint=ENDPOINT, options=options, net=Net(Limits()), client=client, login_budget=HostBudget()
    )
    ctx.fingerprint = fp
    for name, value in facts.items():
        setattr(ctx, name, value)
    return ctx


def test_fingerprint_refinements_return_new_facts() -> None:
    # Given an identified fingerprint without a version, and an unidentified one
    known, unknown = fingerprint("Orthanc"), fingerprint(None)
    # When refined by a version read later and by a DICOMweb answer
    versioned = known.with_version("1.10.1")
    named = unknown.as_dicomweb()
    # Then new facts carry the refinement and the originals are untouched
    assert (versioned.version, known.version) == ("1.10.1", None)
    assert (named.product, unknown.product) == (GENERIC_DICOMWEB, None)
    # And a hostile or malformed version is refused, an identified product is not renamed
    assert known.with_version("<script>") is known and known.with_version(7) is known
    assert known.as_dicomweb() is known


def test_qido_facts_evidence_holds_counts_never_the_memory_only_fields() -> None:
    # Given QIDO facts with a study UID kept in memory for the WADO probe
    facts = QidoResult(status="open", base_template="/dicom-web", studies=3, base="/dicom-web",
                       sample_study_uid="1.2.3.4")  # fmt: skip
    # Then the evidence is counts and our own path template only
    evidence = facts.evidence()
    assert evidence["studies"] == 3 and evidence["path"] == "/dicom-web"
    assert "1.2.3.4" not in repr(facts) and "1.2.3.4" not in str(evidence)


async def test_cve_check_from_fingerprint_facts_alone() -> None:
    # Given hand-built facts: Orthanc 1.10.1, and a product without a version
    vulnerable = context(fingerprint("Orthanc", "1.10.1"))
    silent = context(fingerprint("Orthanc"))
    # When the CVE check runs on each
    attempt, found = await cve.CHECK.attempt(vulnerable)
    skipped_attempt, nothing = await cve.CHECK.attempt(silent)
    # Then the version range matches (as "possible": a version is not proof); no version, no test
    assert attempt.status is AttemptStatus.COMPLETED and found
    assert "CVE-2023-33466" in found[0].summary and "possible" in found[0].summary
    assert skipped_attempt.status is AttemptStatus.SKIPPED and nothing == ()


@pytest.mark.parametrize(
    ("facts", "severity"),
    [
        ({"phi_exposed": True}, Severity.HIGH),
        ({"auth_seen": True}, Severity.HIGH),
        ({}, Severity.MEDIUM),
    ],
)
async def test_plaintext_severity_follows_the_facts(facts: dict[str, object], severity: Severity) -> None:
    # Given an identified service over plain HTTP with these facts
    ctx = context(fingerprint("Orthanc", "1.10.1"), **facts)
    # When WEB-PLAINTEXT runs
    _, found = await plaintext.CHECK.attempt(ctx)
    # Then its severity is read from the facts only
    assert [f.severity for f in found] == [severity]
