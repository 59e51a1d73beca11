"""Real Debian Orthanc 1.10.1 on 127.0.0.1, three configurations (issue 3, "What it must show")."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from lab.orthanc import Orthanc, orthanc_hardened, start_orthanc
from lab.tls import make_self_signed
from pacsradar.lab.synthetic import LabSummary
from pacsradar.models import Severity, TargetResult
from web.helpers import CANARY, attempt, finding, ids, web_scan
from web.servers import tls_proxy

pytestmark = pytest.mark.peers


async def test_open_web_orthanc_reports_exact_counts_and_plaintext(
    open_orthanc: Orthanc, canary_summary: LabSummary
) -> None:
    # Given Orthanc with RemoteAccessAllowed true and AuthenticationEnabled false, data loaded
    # When the web auditor scans its HTTP port
    result = await web_scan(open_orthanc.http_port)
    # Then it is identified from /system with its version
    assert result.service == "http"
    assert result.product == "Orthanc 1.10.1"
    # And WEB-UNAUTH-PHI carries the exact counts of the synthetic data (Orthanc /statistics)
    phi = finding(result, "WEB-UNAUTH-PHI")
    assert phi.severity is Severity.CRITICAL
    assert phi.evidence["patients"] == canary_summary.patients
    assert phi.evidence["studies"] == canary_summary.studies
    assert phi.evidence["series"] == canary_summary.series
    assert phi.evidence["instances"] == canary_summary.instances
    # And QIDO-RS counts agree: studies, NumberOfStudyRelatedInstances summed, keyed patients
    qido = finding(result, "DICOMWEB-UNAUTH-QIDO")
    assert qido.evidence["studies"] == canary_summary.studies
    assert qido.evidence["instances"] == canary_summary.instances
    assert qido.evidence["patients"] == canary_summary.patients
    assert qido.evidence["truncated"] is False
    # And plain HTTP serving PHI is high severity
    assert finding(result, "WEB-PLAINTEXT").severity is Severity.HIGH
    # And the rest of the open configuration is seen
    assert {
        "DICOMWEB-UNAUTH-WADO",
        "DICOMWEB-STOW-OPEN",
        "WEB-ORTHANC-INSECURE",
        "WEB-WEBDAV-OPEN",
        "WEB-METRICS-OPEN",
        "WEB-SERVICE-EXPOSED",
    } <= ids(result)
    # And no login was tried, because there was nothing to log in to
    assert "WEB-DEFAULT-CREDENTIALS" not in ids(result)
    assert not any(a.status.value == "error" for a in result.attempts)


async def test_open_web_orthanc_paging_stops_at_max_records(
    open_orthanc: Orthanc, canary_summary: LabSummary
) -> None:
    # Given an open Orthanc with more studies than --max-records allows
    limit = canary_summary.studies - 2
    # When it is scanned with that bound
    result = await web_scan(open_orthanc.http_port, max_records=limit)
    # Then QIDO-RS counting stops at the bound and says so
    qido = finding(result, "DICOMWEB-UNAUTH-QIDO")
    assert qido.evidence["studies"] == limit
    assert qido.evidence["truncated"] is True


async def test_auth_without_users_reports_default_credentials_only(
    auth_no_users_orthanc: Orthanc, canary_summary: LabSummary
) -> None:
    # Given Orthanc with authentication on and no RegisteredUsers (it creates orthanc:orthanc)
    # When it is scanned
    result = await web_scan(auth_no_users_orthanc.http_port)
    # Then the default login is found, over HTTP Basic, within the attempt budget
    default = finding(result, "WEB-DEFAULT-CREDENTIALS")
    assert default.evidence["username"] == "orthanc"
    assert default.evidence["mechanism"] == "basic"
    assert isinstance(default.evidence["attempts"], int) and default.evidence["attempts"] <= 4
    # And it says how much the default login opens (counts only)
    assert default.evidence["patients_behind_login"] == canary_summary.patients
    # And nothing is reported as readable without authentication
    assert not ids(result) & {"WEB-UNAUTH-PHI", "DICOMWEB-UNAUTH-QIDO", "DICOMWEB-UNAUTH-WADO"}
    assert not ids(result) & {"DICOMWEB-STOW-OPEN", "WEB-WEBDAV-OPEN", "WEB-METRICS-OPEN"}
    assert "WEB-BLANK-CREDENTIALS" not in ids(result)
    # And Orthanc's own insecurity flag is read through that login
    assert finding(result, "WEB-ORTHANC-INSECURE").evidence["read_via"] == "login"
    assert attempt(result, "web.unauth_phi")["auth_required"] is True


@pytest.fixture
async def hardened(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[int, str]]:
    """Hardened Orthanc (strong password) behind a TLS 1.2+ terminator with a self-signed cert.

    Debian's Orthanc 1.10.1 segfaults on its first HTTPS connection when SslEnabled is true
    in this environment (verified by hand: civetweb exits with SIGSEGV on the handshake), so
    TLS is terminated by tests/web/servers.tls_proxy; everything else is orthanc_hardened().
    """
    work = tmp_path_factory.mktemp("hardened")
    cert = make_self_signed(work / "tls", "hardened")
    config = {**orthanc_hardened(cert.combined), "SslEnabled": False}
    config.pop("SslCertificate")
    with start_orthanc(work / "orthanc", config) as orthanc:
        async with tls_proxy(orthanc.http_port, cert.cert, cert.key) as port:
            _user, password = next(iter(config["RegisteredUsers"].items()))
            yield port, password


async def test_hardened_orthanc_has_no_credential_finding_and_only_real_tls_issues(
    hardened: tuple[int, str],
) -> None:
    # Given a strong password and HTTPS (TLS 1.2+, strong suites, self-signed certificate)
    port, password = hardened
    # When it is scanned
    result = await web_scan(port)
    # Then it is seen over HTTPS as Orthanc asking for authentication
    assert result.service == "https"
    assert result.endpoint.protocol == "https"
    assert result.product is not None and result.product.startswith("Orthanc")
    # And no credential or exposure finding is made
    assert not ids(result) & {
        "WEB-BLANK-CREDENTIALS", "WEB-DEFAULT-CREDENTIALS", "WEB-UNAUTH-PHI",
        "DICOMWEB-UNAUTH-QIDO", "WEB-PLAINTEXT", "WEB-ORTHANC-INSECURE",
    }  # fmt: skip
    assert attempt(result, "web.credentials")["accepted"] is False
    # And the TLS audit reports only what is really weak: the self-signed certificate
    assert "TLS-WEAK" not in ids(result)
    cert = finding(result, "TLS-CERTIFICATE")
    assert cert.evidence["issues"] == ["self-signed certificate"]
    tls = attempt(result, "web.tls")
    assert tls["tls1_0"] in ("refused", "could not test")
    assert tls["tls1_1"] in ("refused", "could not test")
    # And the strong password never appears in the results
    assert password not in result.model_dump_json()


async def test_no_canary_byte_in_results_or_debug_logs(
    open_orthanc: Orthanc, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an open Orthanc whose patients carry the canary in names, IDs and addresses
    caplog.set_level(logging.DEBUG)
    # When everything the web checks do is logged at DEBUG and the result is dumped as JSON
    result: TargetResult = await web_scan(open_orthanc.http_port)
    dumped = result.model_dump_json() + json.dumps([r.getMessage() for r in caplog.records])
    dumped += caplog.text
    # Then the scan did see the data (so the test is not vacuous)
    assert finding(result, "WEB-UNAUTH-PHI").evidence["patients"]
    # And zero canary bytes appear anywhere
    assert CANARY not in dumped
    assert CANARY.lower() not in dumped.lower()
