"""The DICOM audit against real peers started by the tests: Orthanc, DCMTK, pynetdicom.

All traffic goes to 127.0.0.1; each peer has its own free ports (Orthanc and DCMTK bind 0.0.0.0).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dicom.helpers import attempt_details, finding, ids, result_for, scan
from lab.dcmtk import DCMQRSCP, STORESCP, dcmtk_available, start_dcmqrscp, start_storescp_tls
from lab.orthanc import orthanc_available, orthanc_default, orthanc_open_dicom, start_orthanc
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies, summarise

needs_orthanc = pytest.mark.skipif(not orthanc_available(), reason="Debian orthanc not installed")
needs_dcmqrscp = pytest.mark.skipif(not dcmtk_available(DCMQRSCP), reason="Debian dcmtk not installed")
needs_storescp = pytest.mark.skipif(not dcmtk_available(STORESCP), reason="Debian dcmtk not installed")


@pytest.fixture(scope="module")
def studies() -> list[Dataset]:
    return make_studies(6, seed=11)


@needs_orthanc
def test_open_orthanc_leaks_exact_counts(tmp_path: Path, studies: list[Dataset]) -> None:
    # Given Orthanc with DicomAlwaysAllowFind (and friends) on, loaded with synthetic studies
    truth = summarise(studies)
    with start_orthanc(tmp_path / "orthanc", orthanc_open_dicom(), plugins=()) as orthanc:
        orthanc.upload(studies)
        # When pacsradar audits its DICOM port
        report = scan([("127.0.0.1", orthanc.dicom_port)])
    result = result_for(report, orthanc.dicom_port)
    # Then it reports the query exposure with the exact patient/study/image counts
    phi = finding(result, "DICOM-QUERY-PHI")
    assert phi is not None, result.attempts
    assert phi.severity == "critical"
    assert phi.evidence["patients"] == truth.patients
    assert phi.evidence["studies"] == truth.studies
    assert phi.evidence["images"] == truth.instances
    assert "PatientName" in phi.evidence["phi_attributes"]  # type: ignore[operator]
    assert {"DICOM-ANY-AE", "DICOM-PLAINTEXT"} <= ids(result)
    assert result.product == "Orthanc"  # named behind the DCMTK UID (dicom.fingerprint.refine)


@needs_orthanc
def test_default_orthanc_accepts_association_but_refuses_find(tmp_path: Path, studies: list[Dataset]) -> None:
    # Given Orthanc with its default DICOM settings (DicomAlwaysAllowFind false), holding data
    with start_orthanc(tmp_path / "orthanc", orthanc_default(), plugins=()) as orthanc:
        orthanc.upload(studies)
        report = scan([("127.0.0.1", orthanc.dicom_port)])
    result = result_for(report, orthanc.dicom_port)
    # Then the association is accepted (any AE), C-FIND is refused, and there is no PHI finding
    assert "DICOM-ANY-AE" in ids(result)
    assert "DICOM-QUERY-PHI" not in ids(result)
    query = attempt_details(result, "dicom.query")
    assert query["refused"] is True and query["records"] == 0
    assert attempt_details(result, "dicom.echo")["success"] is True


@needs_dcmqrscp
def test_dcmqrscp_restricted_to_one_peer_is_rejected_with_reason_7(
    tmp_path: Path, studies: list[Dataset]
) -> None:
    # Given dcmqrscp whose only AE accepts one calling AE
    with start_dcmqrscp(tmp_path / "qr", studies, called_aet="HOSPQR", allowed_calling=("ALLOWED",)) as qr:
        report = scan([("127.0.0.1", qr.port)], aet_wordlist=("HOSPQR",))
    result = result_for(report, qr.port)
    service = attempt_details(result, "dicom.service")
    # Then the rejection is recorded exactly: rejected-permanent, service-user, reason 7
    assert (service["rj_result"], service["rj_source"], service["rj_reason"]) == (1, 1, 7)
    # And it is neither 'any AE' nor 'guessable': even the right called AE is refused for us
    assert not ids(result) & {"DICOM-ANY-AE", "DICOM-AE-GUESSABLE", "DICOM-QUERY-PHI"}
    guess = attempt_details(result, "dicom.aet_guess")
    assert guess["accepted"] is False and int(guess["tried"]) > 1  # type: ignore[call-overload]


@needs_dcmqrscp
def test_dcmqrscp_with_default_called_aet_is_guessed(tmp_path: Path, studies: list[Dataset]) -> None:
    # Given dcmqrscp that checks the called AE (a vendor default, COMMON) but accepts any peer
    with start_dcmqrscp(tmp_path / "qr", studies, called_aet="COMMON", allowed_calling=()) as qr:
        report = scan([("127.0.0.1", qr.port)])
    result = result_for(report, qr.port)
    # Then the random pre-check is rejected and the guess finds exactly the configured title
    guessed = finding(result, "DICOM-AE-GUESSABLE")
    assert guessed is not None
    assert guessed.evidence["guessed_called_aet"] == "COMMON"
    assert "DICOM-ANY-AE" not in ids(result)
    # And with the guessed title the query exposure is measured (dcmqrscp answers C-FIND)
    phi = finding(result, "DICOM-QUERY-PHI")
    assert phi is not None and phi.evidence["studies"] == summarise(studies).studies


@needs_storescp
def test_storescp_tls_is_dicom_tls_not_closed(tmp_path: Path) -> None:
    # Given storescp +tls (BCP 195 profile, no client certificate required)
    with start_storescp_tls(tmp_path / "tls") as peer:
        report = scan([("127.0.0.1", peer.port)])
    result = result_for(report, peer.port)
    # Then pacsradar finds a DICOM-TLS service, not a closed or silent port
    assert result.reachable
    assert result.service == "dicom-tls"
    assert result.endpoint.protocol == "dicom-tls"
    assert "DICOM-PLAINTEXT" not in ids(result)
    assert "DICOM-SERVICE-EXPOSED" in ids(result)


def test_pynetdicom_qr_scp_counts(studies: list[Dataset]) -> None:
    # Given a pynetdicom Q/R SCP on a non-default loopback address, serving synthetic data
    truth = summarise(studies)
    with ExposedPacs(studies, host="127.0.0.23", allow_store=True) as pacs:
        port = pacs.port
        report = scan([("127.0.0.23", port)])
    result = result_for(report, port)
    phi = finding(result, "DICOM-QUERY-PHI")
    # Then counts are exact and retrieve/store exposure comes from negotiation alone
    assert phi is not None
    assert (phi.evidence["patients"], phi.evidence["studies"], phi.evidence["images"]) == (
        truth.patients,
        truth.studies,
        truth.instances,
    )
    assert {"DICOM-ANY-AE", "DICOM-RETRIEVE-OPEN", "DICOM-STORE-OPEN"} <= ids(result)
    assert pacs.stores_refused == 0  # no C-STORE was ever sent


def test_max_records_cancels_and_reports_a_lower_bound(studies: list[Dataset]) -> None:
    # Given a PACS with more studies than --max-records
    with ExposedPacs(studies, host="127.0.0.24") as pacs:
        port = pacs.port
        report = scan([("127.0.0.24", port)], max_records=3)
    result = result_for(report, port)
    phi = finding(result, "DICOM-QUERY-PHI")
    # Then we stop counting at the bound and say "≥ 3"
    assert phi is not None
    assert phi.evidence["truncated"] is True and phi.evidence["studies"] == 3
    assert "≥ 3" in phi.summary
    # And the C-FIND ended cleanly after our C-CANCEL: cancelled (0xFE00), or already complete
    # (0x0000) when the SCP had sent everything before the cancel arrived; never an abort
    assert attempt_details(result, "dicom.query")["final_status"] in ("0xFE00", "0x0000")


def test_user_identity_is_reported_when_ignored(studies: list[Dataset]) -> None:
    # Given a PACS that ignores User Identity Negotiation
    with ExposedPacs(studies[:1], host="127.0.0.25") as pacs:
        port = pacs.port
        report = scan([("127.0.0.25", port)])
    found = finding(result_for(report, port), "DICOM-USER-IDENTITY-IGNORED")
    assert found is not None and found.evidence["bogus_identity_accepted"] is True


@pytest.fixture
def http_on_dicom_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_http_server_on_a_dicom_port_is_not_dicom(http_on_dicom_port: int) -> None:
    # Given a plain HTTP server listening where DICOM is expected
    report = scan([("127.0.0.1", http_on_dicom_port)])
    result = result_for(report, http_on_dicom_port)
    # Then it is reachable, classified as HTTP, and has no DICOM findings
    assert result.reachable and result.service == "http"
    assert not any(f.check_id.startswith("DICOM-") for f in result.findings)


def test_closed_port_is_unreachable_and_silent(closed_ports: Callable[..., int]) -> None:
    # Given a port nothing listens on
    port = closed_ports()
    report = scan([("127.0.0.1", port)])
    # Then it is counted as closed and produces no result row or finding
    assert report.stats.endpoints_closed == 1
    assert report.results == ()
