"""The lab itself works: every peer really starts, listens on loopback and answers as documented.

These tests also pin the experimentally verified peer behaviour the scanner's checks rely on
(Orthanc defaults, dcmqrscp A-ASSOCIATE-RJ reasons, storescp TLS profiles).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from lab import CANARY
from lab.dcmtk import DcmtkPeer
from lab.hostile import HOSTILE_KINDS, EndlessPending, ThreadedServer, closed_port
from lab.orthanc import (
    Orthanc,
    orthanc_auth_no_users,
    orthanc_default,
    orthanc_hardened,
    orthanc_open_dicom,
    orthanc_open_web,
)
from lab.tls import CertPair
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.query import universal_query
from pacsradar.lab.synthetic import LabSummary, make_studies, summarise, to_part10_bytes

FIND = StudyRootQueryRetrieveInformationModelFind
STUDY_KEYS = ["PatientName", "PatientID", "StudyInstanceUID", "NumberOfStudyRelatedInstances"]
LOOPBACK_HOST = "127.0.0.1"
REJECTED_PERMANENT, SERVICE_USER = 1, 1
CALLING_AE_NOT_RECOGNISED, CALLED_AE_NOT_RECOGNISED = 3, 7  # PS3.8 §9.3.4 Table 9-21


@contextlib.contextmanager
def associate(
    host: str, port: int, *contexts: str, calling: str = "PACSRADAR", called: str = "ANY-SCP",
    tls: tuple[ssl.SSLContext, str] | None = None, pdus: list[str] | None = None,
) -> Iterator[Association]:  # fmt: skip
    """pynetdicom requestor; names of PDUs received are appended to ``pdus`` if given."""
    ae = AE(ae_title=calling)
    for context in contexts:
        ae.add_requested_context(context)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    handlers = []
    if pdus is not None:
        handlers.append((evt.EVT_PDU_RECV, lambda event: pdus.append(type(event.pdu).__name__)))
    assoc = ae.associate(host, port, ae_title=called, tls_args=tls, evt_handlers=handlers)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        if assoc.ident is not None:
            assoc.join(10)


def rejection(host: str, port: int, calling: str, called: str) -> tuple[int, int, int]:
    """(result, source, reason) of the A-ASSOCIATE-RJ the peer sends (PS3.8 §9.3.4).

    Read from the received PDU itself: when the peer closes TCP right after the RJ,
    pynetdicom sometimes flags the association as aborted instead of rejected.
    """
    received: list[Any] = []
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 10
    handlers = [(evt.EVT_PDU_RECV, lambda event: received.append(event.pdu))]
    assoc = ae.associate(host, port, ae_title=called, evt_handlers=handlers)
    if assoc.is_established:
        assoc.release()
    if assoc.ident is not None:
        assoc.join(10)
    rj = [pdu for pdu in received if isinstance(pdu, A_ASSOCIATE_RJ)]
    assert len(rj) == 1, f"expected one A-ASSOCIATE-RJ, got {received!r}"
    return int(rj[0].result), int(rj[0].source), int(rj[0].reason_diagnostic)


def find_studies(assoc: Association, model: str = FIND) -> tuple[list[Dataset], int]:
    matches, final = [], -1
    for status, identifier in assoc.send_c_find(universal_query("STUDY", STUDY_KEYS), model):
        if status and status.Status == 0xFF00:
            matches.append(identifier)
        elif status:
            final = int(status.Status)
    return matches, final


# -- synthetic data ------------------------------------------------------------------------


def test_synthetic_counts_canaries_and_reproducibility() -> None:
    # Given a seeded lab with a canary
    datasets = make_studies(4, seed=7, canary=CANARY)
    # When it is summarised and regenerated
    summary = summarise(datasets)
    again = make_studies(4, seed=7, canary=CANARY)
    # Then counts are exact, every PHI attribute carries the canary, and output is stable
    assert summary.patients == 4 and summary.instances == len(datasets)
    assert summary.studies >= 4 and summary.series >= summary.studies
    for ds in datasets:
        for keyword in ("PatientName", "PatientID", "PatientAddress", "AccessionNumber"):
            assert CANARY in str(ds.data_element(keyword).value)
        assert CANARY in str(ds.InstitutionName)
        assert CANARY.encode() in to_part10_bytes(ds)[132:]  # after preamble + "DICM"
    assert [d.SOPInstanceUID for d in again] == [d.SOPInstanceUID for d in datasets]
    assert {ds.Modality for ds in make_studies(20, seed=1)} == {"CT", "MR", "CR"}


# -- ExposedPacs (pynetdicom) -------------------------------------------------------------


def test_exposed_pacs_echo_and_find_report_exact_counts(
    exposed_pacs: ExposedPacs, lab_summary: LabSummary
) -> None:
    # Given the exposed lab PACS, When any AE echoes and queries with universal matching
    with associate(*exposed_pacs.address, Verification, FIND, called="WHATEVER") as assoc:
        echo = assoc.send_c_echo()
        studies, final = find_studies(assoc)
    # Then it answers every study, with counts matching the synthetic data exactly
    assert echo.Status == 0x0000 and final == 0x0000
    assert len(studies) == lab_summary.studies
    assert sum(int(s.NumberOfStudyRelatedInstances) for s in studies) == lab_summary.instances
    assert all(CANARY in str(s.PatientName) for s in studies)


def test_exposed_pacs_patient_root_single_value_match(lab_datasets: list[Dataset]) -> None:
    # Given the lab PACS on another loopback address
    with ExposedPacs(lab_datasets, host="127.0.0.2") as pacs:
        query = universal_query("PATIENT", ["PatientName", "NumberOfPatientRelatedStudies"])
        query.PatientID = f"{CANARY}1"
        # When one patient is asked for by ID
        with associate(*pacs.address, PatientRootQueryRetrieveInformationModelFind) as assoc:
            results = list(assoc.send_c_find(query, PatientRootQueryRetrieveInformationModelFind))
    # Then exactly that patient comes back, then Success
    assert [str(i.PatientID) for s, i in results if s.Status == 0xFF00] == [f"{CANARY}1"]
    assert results[-1][0].Status == 0x0000


def test_exposed_pacs_refuses_retrieve_and_store(lab_datasets: list[Dataset]) -> None:
    # Given a lab PACS that negotiates retrieve and storage contexts
    contexts = (StudyRootQueryRetrieveInformationModelMove,
                StudyRootQueryRetrieveInformationModelGet, CTImageStorage, MRImageStorage)  # fmt: skip
    with ExposedPacs(lab_datasets, allow_store=True) as pacs, associate(*pacs.address, *contexts) as assoc:
        # When a peer tries C-MOVE, C-GET and C-STORE
        move = [s.Status for s, _ in assoc.send_c_move(universal_query("STUDY", []), "X",
                                                       contexts[0])]  # fmt: skip
        get = [s.Status for s, _ in assoc.send_c_get(universal_query("STUDY", []), contexts[1])]
        ct = next(ds for ds in lab_datasets if ds.Modality == "CT")
        store = assoc.send_c_store(ct)
        refused = pacs.stores_refused
    # Then nothing is sent or kept: 0xA801, 0xA702 and 0xA700
    assert move == [0xA801] and get == [0xA702]
    assert store.Status == 0xA700 and refused == 1


def test_exposed_pacs_without_store_rejects_storage_contexts(exposed_pacs: ExposedPacs) -> None:
    # Given the default lab PACS, When a peer proposes CT storage, Then that context is refused
    with associate(*exposed_pacs.address, Verification, CTImageStorage) as assoc:
        accepted = {cx.abstract_syntax for cx in assoc.accepted_contexts}
        rejected = {cx.abstract_syntax for cx in assoc.rejected_contexts}
    assert accepted == {Verification} and rejected == {CTImageStorage}


def test_exposed_pacs_ae_title_checks(lab_datasets: list[Dataset]) -> None:
    # Given a lab PACS that checks both AE titles
    with ExposedPacs(lab_datasets, require_called_aet=True, allowed_calling={"GOOD"}) as pacs:
        # When peers get the called or the calling AE title wrong, or both right
        wrong_called = rejection(*pacs.address, calling="GOOD", called="WRONG")
        wrong_calling = rejection(*pacs.address, calling="BAD", called="ANY-SCP")
        with associate(*pacs.address, Verification, calling="GOOD", called="ANY-SCP") as a:
            ok = a.is_established
    # Then A-ASSOCIATE-RJ says which one (PS3.8 §9.3.4)
    assert wrong_called == (REJECTED_PERMANENT, SERVICE_USER, CALLED_AE_NOT_RECOGNISED)
    assert wrong_calling == (REJECTED_PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED)
    assert ok


# -- Orthanc -------------------------------------------------------------------------------


@pytest.mark.peers
def test_orthanc_open_dicom_answers_find(
    orthanc_factory: Callable[..., Orthanc], lab_datasets: list[Dataset], lab_summary: LabSummary
) -> None:
    # Given Orthanc with DICOM wide open, holding the lab data
    orthanc = orthanc_factory(orthanc_open_dicom(), datasets=lab_datasets)
    # When an unknown AE echoes and queries
    with associate(LOOPBACK_HOST, orthanc.dicom_port, Verification, FIND, called="X") as assoc:
        echo = assoc.send_c_echo()
        studies, final = find_studies(assoc)
    # Then every study comes back with its instance count
    assert echo.Status == 0x0000 and final == 0x0000
    assert len(studies) == lab_summary.studies
    assert sum(int(s.NumberOfStudyRelatedInstances) for s in studies) == lab_summary.instances


@pytest.mark.peers
def test_orthanc_defaults_accept_echo_but_abort_find(
    orthanc_factory: Callable[..., Orthanc], lab_datasets: list[Dataset]
) -> None:
    # Given Orthanc 1.10.1 with its defaults (DicomAlwaysAllowFind false, verified here)
    orthanc = orthanc_factory(orthanc_default(), datasets=lab_datasets[:2])
    pdus: list[str] = []
    with associate(LOOPBACK_HOST, orthanc.dicom_port, Verification, FIND, called="X", pdus=pdus) as assoc:
        # When an unknown AE echoes, then queries
        echo = assoc.send_c_echo()
        studies, final = find_studies(assoc)
    # Then the echo succeeds but the C-FIND gets no C-FIND-RSP at all: Orthanc sends A-ABORT
    assert echo.Status == 0x0000
    assert studies == [] and final == -1
    assert pdus[0] == "A_ASSOCIATE_AC" and pdus[-1] == "A_ABORT_RQ"


@pytest.mark.peers
def test_orthanc_web_profiles(
    orthanc_factory: Callable[..., Orthanc], lab_datasets: list[Dataset], tls_cert: CertPair
) -> None:
    # Given Orthanc open on the web, with auth but no users, and hardened
    open_web = orthanc_factory(orthanc_open_web(), datasets=lab_datasets[:1], name="open")
    no_users = orthanc_factory(orthanc_auth_no_users(), name="nousers")
    hardened_cfg = orthanc_hardened(tls_cert.combined)
    hardened = orthanc_factory(hardened_cfg, name="hardened")
    user, password = next(iter(hardened_cfg["RegisteredUsers"].items()))
    # When each is asked over HTTP(S) without and with credentials
    with open_web.client() as http:
        qido = http.get("/dicom-web/studies")
    with no_users.client() as anon, no_users.client(("orthanc", "orthanc")) as default_user:
        no_users_codes = (anon.get("/system").status_code,
                          default_user.get("/system").status_code)  # fmt: skip
    with hardened.client() as anon, hardened.client((user, password)) as admin:
        hardened_codes = (anon.get("/system").status_code, admin.get("/system").status_code)
    # Then: DICOMweb leaks, "no users" silently means orthanc:orthanc, hardened needs the user
    assert qido.status_code == 200 and len(qido.json()) == 1
    assert no_users_codes == (401, 200)
    assert hardened.base_url.startswith("https://") and hardened_codes == (401, 200)


@pytest.mark.peers
def test_orthanc_hardened_rejects_unknown_calling_ae(
    orthanc_factory: Callable[..., Orthanc], tls_cert: CertPair
) -> None:
    # Given hardened Orthanc, When an unknown AE calls it by its right and a wrong AE title
    orthanc = orthanc_factory(orthanc_hardened(tls_cert.combined))
    right_called = rejection(LOOPBACK_HOST, orthanc.dicom_port, "STRANGER", "HARDENED")
    wrong_called = rejection(LOOPBACK_HOST, orthanc.dicom_port, "STRANGER", "WRONG")
    # Then it rejects: calling AE not recognised, resp. called AE not recognised
    assert right_called == (REJECTED_PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED)
    assert wrong_called == (REJECTED_PERMANENT, SERVICE_USER, CALLED_AE_NOT_RECOGNISED)


# -- DCMTK ---------------------------------------------------------------------------------


@pytest.mark.peers
def test_dcmqrscp_serves_allowed_peer_and_rejects_others(
    dcmqrscp_lab: DcmtkPeer, lab_summary: LabSummary
) -> None:
    # Given dcmqrscp with called AE HOSPQR that only knows peer ALLOWED
    port = dcmqrscp_lab.port
    # When the allowed peer queries, and strangers call
    with associate(LOOPBACK_HOST, port, FIND, calling="ALLOWED", called="HOSPQR") as assoc:
        studies, final = find_studies(assoc)
    unknown_called = rejection(LOOPBACK_HOST, port, calling="ALLOWED", called="NOPE")
    unknown_calling = rejection(LOOPBACK_HOST, port, calling="STRANGER", called="HOSPQR")
    # Then the peer sees every study; both strangers get reason 7 (dcmqrscp never says 3)
    assert final == 0x0000 and len(studies) == lab_summary.studies
    assert unknown_called == (REJECTED_PERMANENT, SERVICE_USER, CALLED_AE_NOT_RECOGNISED)
    assert unknown_calling == (REJECTED_PERMANENT, SERVICE_USER, CALLED_AE_NOT_RECOGNISED)


def _tls_client(cert: CertPair, ciphers: str | None = None, **versions: Any) -> ssl.SSLContext:
    with warnings.catch_warnings():  # TLS < 1.2 is deprecated in ssl; the weak test needs it
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(str(cert.cert))
        for name, value in versions.items():
            setattr(ctx, name, value)
        if ciphers:
            ctx.set_ciphers(ciphers)
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> tuple[str, str] | None:
    try:
        with (
            socket.create_connection((LOOPBACK_HOST, port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname=LOOPBACK_HOST) as tls,
        ):
            return str(tls.version()), tls.cipher()[0]
    except ssl.SSLError:
        return None


@pytest.mark.peers
def test_storescp_tls_profiles(
    storescp_tls: DcmtkPeer, storescp_tls_factory: Callable[..., DcmtkPeer], tls_cert: CertPair
) -> None:
    # Given storescp with the default BCP 195 profile and one with the retired AES profile
    weak = storescp_tls_factory("aes")
    default_client = _tls_client(tls_cert)
    # When Python's default client and a legacy static-RSA client connect
    strong_default = _handshake(storescp_tls.port, default_client)
    strong_legacy = _handshake(storescp_tls.port, _tls_client(tls_cert, "AES128-SHA:@SECLEVEL=0",
                               maximum_version=ssl.TLSVersion.TLSv1_2))  # fmt: skip
    weak_default = _handshake(weak.port, default_client)
    weak_legacy = _handshake(weak.port, _tls_client(tls_cert, "AES128-SHA:@SECLEVEL=0",
                             maximum_version=ssl.TLSVersion.TLSv1_2))  # fmt: skip
    with associate(LOOPBACK_HOST, storescp_tls.port, Verification, called="TLSSCP",
                   tls=(default_client, LOOPBACK_HOST)) as assoc:  # fmt: skip
        echo_over_tls = assoc.send_c_echo().Status
    # Then the BCP 195 peer speaks TLS 1.3 and refuses static RSA; the AES peer is the reverse
    assert strong_default is not None and strong_default[0] == "TLSv1.3"
    assert strong_legacy is None
    assert weak_default is None
    assert weak_legacy == ("TLSv1.2", "AES128-SHA")
    assert echo_over_tls == 0x0000


# -- hostile servers -----------------------------------------------------------------------

_RQ_PROBE = bytes([0x01, 0x00, 0, 0, 0, 4]) + b"junk"  # an A-ASSOCIATE-RQ header, garbage body


@pytest.mark.parametrize("kind", sorted(HOSTILE_KINDS))
async def test_hostile_servers_accept_connections(kind: str) -> None:
    # Given a hostile server on a non-default loopback address
    async with HOSTILE_KINDS[kind](host="127.0.0.3") as server:
        # When a client connects and sends something
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(_RQ_PROBE)
        await writer.drain()
        first = await _first_bytes(reader)
        writer.close()
        await writer.wait_closed()
        # Then it accepted the connection and answered (or not) as designed
        assert server.connections == 1
    expected = {"huge_pdu": b"\x02\x00\xff\xff\xff\xf0", "http_on_dicom_port": b"HTTP/1.1 400"}
    if kind in expected:
        assert first.startswith(expected[kind])
    elif kind == "silent":
        assert first == b"pending"
    else:  # a real DICOM-ish server hangs up on a garbage A-ASSOCIATE-RQ
        assert first == b""


async def _first_bytes(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(64), 0.5)
    except TimeoutError:
        return b"pending"  # nothing yet: the server is (deliberately) keeping quiet


def test_endless_pending_ignores_cancel(hostile_factory: Callable[..., ThreadedServer]) -> None:
    # Given the endless-Pending SCP on a background loop
    hostile = hostile_factory("endless_pending")
    server = hostile.server
    assert isinstance(server, EndlessPending)
    received = 0
    # When a client asks, cancels after 3 responses and stops reading after 50
    with associate(hostile.host, hostile.port, FIND) as assoc:
        for status, _ in assoc.send_c_find(universal_query("STUDY", ["PatientID"]), FIND,
                                           msg_id=7):  # fmt: skip
            received += 1
            if received == 3:
                assoc.send_c_cancel(7, query_model=FIND)
            if received == 50 or not status:
                break
        assoc.abort()
    # Then the responses kept coming past the cancel
    assert received == 50 and server.cancels_ignored == 1 and server.pending_sent >= 50


def test_closed_port_refuses() -> None:
    # Given a port with nothing listening, When connecting, Then the connection is refused
    with closed_port("127.0.0.4") as port, pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.4", port), 5).close()
