"""TLS audit against DCMTK storescp +tls (PS3.15 Annex B profiles), on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.dcmtk import STORESCP, DcmtkPeer, dcmtk_available, start_storescp_tls
from pacsradar.config import Limits
from pacsradar.models import AttemptStatus, Finding, Severity
from pacsradar.tls import audit_tls
from web.servers import HOSTILE, raw_server

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not dcmtk_available(STORESCP), reason="Debian dcmtk is not installed"),
]
LIMITS = Limits(connect_timeout=2.0, read_timeout=2.0)


@pytest.fixture
def storescp(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DcmtkPeer]:
    profile, require_cert = request.param
    peer = start_storescp_tls(tmp_path, profile=profile, require_client_cert=require_cert)
    try:
        yield peer
    finally:
        peer.stop()


def by_id(findings: tuple[Finding, ...]) -> dict[str, Finding]:
    return {f.check_id: f for f in findings}


@pytest.mark.parametrize("storescp", [("null", False)], indirect=True)
async def test_null_profile_is_weak_and_high(storescp: DcmtkPeer) -> None:
    # Given storescp with the retired "authenticated unencrypted" profile (+pn)
    # When its DICOM-TLS port is audited
    attempt, findings = await audit_tls("127.0.0.1", storescp.port, limits=LIMITS)
    # Then the NULL cipher is found and rated high
    assert attempt.status is AttemptStatus.COMPLETED
    assert attempt.check == "tls.audit"
    weak = by_id(findings)["TLS-WEAK"]
    assert weak.severity is Severity.HIGH
    assert "NULL" in str(weak.evidence["weak_cipher_accepted"])
    assert weak.endpoint.protocol == "dicom-tls"


@pytest.mark.parametrize("storescp", [("aes", False)], indirect=True)
async def test_aes_profile_is_weak_for_old_protocol_versions(storescp: DcmtkPeer) -> None:
    # Given storescp with the retired AES profile (+pa)
    # When audited
    attempt, findings = await audit_tls("127.0.0.1", storescp.port, limits=LIMITS)
    # Then TLS-WEAK names the obsolete versions it accepts (or says they could not be tested)
    details = attempt.details
    weak = by_id(findings).get("TLS-WEAK")
    if details["tls1_0"] == "could not test" and details["tls1_1"] == "could not test":
        pytest.skip("this OpenSSL refuses TLS 1.0/1.1 client-side: could not test")
    assert weak is not None
    assert weak.severity is Severity.MEDIUM
    assert any("TLS 1." in issue for issue in weak.evidence["issues"])  # type: ignore[union-attr]


@pytest.mark.parametrize("storescp", [("bcp195-nd", False)], indirect=True)
async def test_bcp195_profile_is_not_weak(storescp: DcmtkPeer) -> None:
    # Given storescp with the default non-downgrading BCP 195 profile (+py)
    # When audited
    attempt, findings = await audit_tls("127.0.0.1", storescp.port, limits=LIMITS)
    found = by_id(findings)
    # Then no TLS-WEAK: TLS 1.2+ only, no weak suite accepted
    assert "TLS-WEAK" not in found
    assert attempt.details["tls1_0"] in ("refused", "could not test")
    assert attempt.details["weak_cipher_accepted"] is None
    # And only the self-signed certificate and the missing client authentication are reported
    assert found["TLS-CERTIFICATE"].evidence["issues"] == ["self-signed certificate"]
    assert found["TLS-NO-CLIENT-AUTH"].severity is Severity.LOW


@pytest.mark.parametrize("storescp", [("bcp195-nd", True)], indirect=True)
async def test_required_client_certificate_is_recognised(storescp: DcmtkPeer) -> None:
    # Given storescp demanding a client certificate (mutual TLS, PS3.15 Annex B)
    # When audited without one
    attempt, findings = await audit_tls("127.0.0.1", storescp.port, limits=LIMITS)
    # Then the audit still completes, knows the certificate is required, and does not flag it
    assert attempt.status is AttemptStatus.COMPLETED
    assert attempt.details["client_cert_required"] is True
    assert "TLS-NO-CLIENT-AUTH" not in by_id(findings)
    assert attempt.details["version"] in ("TLSv1.2", "TLSv1.3")


async def test_audit_tls_on_a_non_tls_peer_is_an_error_attempt() -> None:
    # Given a peer that sends an SSH banner instead of a ServerHello
    async with raw_server(HOSTILE["non-http-banner"]) as (port, _):
        # When its port is audited for TLS
        attempt, findings = await audit_tls("127.0.0.1", port, limits=LIMITS)
    # Then the result is an error attempt in our own words, no findings
    assert attempt.status is AttemptStatus.ERROR
    assert "no TLS handshake" in (attempt.reason or "")
    assert findings == ()


async def test_audit_tls_on_a_closed_port_is_an_error_attempt() -> None:
    # Given a closed port
    async with raw_server(HOSTILE["non-http-banner"]) as (port, _):
        pass
    # When audited
    attempt, findings = await audit_tls("127.0.0.1", port, limits=LIMITS)
    # Then it is an error attempt, not an exception
    assert attempt.status is AttemptStatus.ERROR
    assert findings == ()
