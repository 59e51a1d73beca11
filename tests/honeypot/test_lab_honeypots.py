"""Ground truth: the emulated public honeypots score above the threshold, real software below.

One scan on 127.0.0.0/8 covers them side by side: Orthanc (open, and default), DCMTK dcmqrscp
(called AE guessed, and AE-restricted), storescp +tls, the pynetdicom Q/R SCP, and the
emulations of tests/lab/honeypots.py (dicompot with defaults and with AE enforcement, DICOMHawk,
the fkie-cad honeypots DICOM server, an accept-everything pynetdicom SCP).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dicom.helpers import FAST, attempt_details, result_for, scan
from lab import CANARY
from lab.dcmtk import DCMQRSCP, STORESCP, dcmtk_available, start_dcmqrscp, start_storescp_tls
from lab.honeypots import DicomHawk, Dicompot, HoneypotProcess
from lab.hostile import run_in_thread
from lab.orthanc import orthanc_available, orthanc_default, orthanc_open_dicom, start_orthanc
from pacsradar.config import Limits
from pacsradar.dicom.honeypot.score import CHECK_ID, DEFAULT_THRESHOLD
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies
from pacsradar.models import ScanReport, TargetResult
from pacsradar.report.exposure import exposure_of

#: dicompot with AE enforcement answers after 5 s: give every association 8 s (the others
#: answer in milliseconds, so nothing else waits longer).
PATIENT = Limits(connect_timeout=2.0, read_timeout=8.0, assoc_timeout=8.0, target_deadline=60.0)

#: pynetdicom's AssociationSocket._shutdown_socket skips close() when shutdown() raises (the
#: client already closed), so a server-side socket of any pynetdicom peer in the run can be
#: finalised unclosed, and its ResourceWarning lands in whichever test the GC runs in. Only that
#: socket-finaliser warning is ignored here; every other warning stays an error.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
)

HONEYPOTS = ("dicompot", "dicompot-enforce", "dicomhawk", "fkie-honeypots", "accept-everything")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScanReport, dict[str, int]]:
    """Start every peer, scan them all once, stop them; yield the report and name -> port."""
    tmp = tmp_path_factory.mktemp("honeypot-lab")
    studies: list[Dataset] = make_studies(4, seed=15)
    ports: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        dicompot = stack.enter_context(run_in_thread(Dicompot()))
        enforce = stack.enter_context(run_in_thread(Dicompot(enforce=True)))
        ports["dicompot"], ports["dicompot-enforce"] = dicompot.port, enforce.port
        ports["dicomhawk"] = stack.enter_context(DicomHawk()).port
        ports["fkie-honeypots"] = stack.enter_context(HoneypotProcess("fkie")).port
        ports["accept-everything"] = stack.enter_context(HoneypotProcess("accept-everything")).port
        ports["pynetdicom-qrscp"] = stack.enter_context(ExposedPacs(studies, allow_store=True)).port
        if orthanc_available():
            open_orthanc = stack.enter_context(start_orthanc(tmp / "o1", orthanc_open_dicom(), plugins=()))
            open_orthanc.upload(studies)
            default = stack.enter_context(start_orthanc(tmp / "o2", orthanc_default(), plugins=()))
            default.upload(studies)
            ports["orthanc-open"], ports["orthanc-default"] = open_orthanc.dicom_port, default.dicom_port
        if dcmtk_available(DCMQRSCP):
            common = stack.enter_context(
                start_dcmqrscp(tmp / "qr1", studies, called_aet="COMMON", allowed_calling=())
            )
            strict = stack.enter_context(start_dcmqrscp(tmp / "qr2", studies, called_aet="HOSPQR"))
            ports["dcmqrscp-guessed"], ports["dcmqrscp-restricted"] = common.port, strict.port
        if dcmtk_available(STORESCP):
            ports["storescp-tls"] = stack.enter_context(start_storescp_tls(tmp / "tls")).port
        report = scan([("127.0.0.1", p) for p in ports.values()], limits=PATIENT)
    return report, ports


def honeypot_details(result: TargetResult) -> dict[str, object]:
    return attempt_details(result, "dicom.honeypot")


@pytest.mark.parametrize("name", HONEYPOTS)
def test_every_emulated_honeypot_scores_above_the_threshold(
    lab: tuple[ScanReport, dict[str, int]], name: str
) -> None:
    # Given the scan of the lab
    report, ports = lab
    result = result_for(report, ports[name])
    details = honeypot_details(result)
    # Then the honeypot scores at or above the default threshold, with the tells that made it
    assert int(details["score"]) >= DEFAULT_THRESHOLD, details  # type: ignore[call-overload]
    assert details["suspected"] is True and details["tells"]
    # And every one of its findings carries the mark
    assert result.findings and all(f.suspected_honeypot for f in result.findings), result.findings
    assert any(f.check_id == CHECK_ID for f in result.findings)


def test_real_software_scores_below_the_threshold(lab: tuple[ScanReport, dict[str, int]]) -> None:
    # Given the scan of the lab
    report, ports = lab
    real = {n: p for n, p in ports.items() if n not in HONEYPOTS}
    assert "pynetdicom-qrscp" in real
    for name, port in real.items():
        result = result_for(report, port)
        details = honeypot_details(result)
        # Then no real server shows a single tell: zero false positives, and nothing marked
        assert details["tells"] == [] and details["score"] == 0, (name, details)
        assert not any(f.suspected_honeypot for f in result.findings), name
        assert all(f.check_id != CHECK_ID for f in result.findings), name


def test_no_value_a_honeypot_sent_reaches_the_report(lab: tuple[ScanReport, dict[str, int]]) -> None:
    # Given the lab scan: the honeypots' fake patients carry the CANARY prefix
    report, _ = lab
    # Then no trace of them is in the report (counts, keywords and keyed hashes only)
    assert CANARY not in report.model_dump_json()


def test_the_headline_counts_real_archives_only(lab: tuple[ScanReport, dict[str, int]]) -> None:
    # Given the lab scan, where several honeypots "expose patients" via C-FIND
    report, ports = lab
    exposure = exposure_of(report.findings)
    # Then the honeypots are counted apart, and their records are not in the headline
    assert exposure.honeypots == len(HONEYPOTS)
    assert "look like honeypots (not counted)" in exposure.sentence
    honeypot_ports = {ports[n] for n in HONEYPOTS}
    real_only = [f for f in report.findings if f.endpoint.port not in honeypot_ports]
    assert (exposure.patients, exposure.services) == (
        exposure_of(real_only).patients,
        exposure_of(real_only).services,
    )
    # Unless asked to count them
    assert exposure_of(report.findings, count_honeypots=True).services > exposure.services


def test_dicompot_with_ae_enforcement_is_recognised_by_its_reject(
    lab: tuple[ScanReport, dict[str, int]],
) -> None:
    # Given dicompot -enforce yes, which sleeps 5 s and then rejects with source 2 reason 2
    report, ports = lab
    result = result_for(report, ports["dicompot-enforce"])
    tells = " ".join(str(t) for t in honeypot_details(result)["tells"])  # type: ignore[union-attr]
    # Then both the impossible reason and the fixed delay are tells, and AE guessing was skipped
    assert "reject-protocol-version" in tells and "reject-fixed-delay" in tells
    assert attempt_details(result, "dicom.aet_guess") == {}


def test_with_a_short_association_timeout_the_sleeping_honeypot_gets_a_longer_listen() -> None:
    # Given dicompot with AE enforcement and the default 2 s association timeout
    with run_in_thread(Dicompot(enforce=True)) as server:
        report = scan([(server.host, server.port)], limits=FAST)
    result = result_for(report, server.port)
    # Then the silent peer got one longer listen (Limits.silent_listen, 8 s), its delayed
    # rejection was scored, and it is a suspect (issue 22 item 3), not 'could not test'
    service = next(a for a in result.attempts if a.check == "dicom.service")
    assert service.status != "error", service
    assert honeypot_details(result)["suspected"] is True


def test_without_the_longer_listen_the_sleeping_honeypot_is_could_not_test() -> None:
    # Given dicompot with AE enforcement, the 2 s association timeout and no longer listen
    limits = dataclasses.replace(FAST, silent_listen=0.0)
    with run_in_thread(Dicompot(enforce=True)) as server:
        report = scan([(server.host, server.port)], limits=limits)
    result = result_for(report, server.port)
    # Then nothing is claimed about it: an error ("could not test"), no finding, no exposure
    service = next(a for a in result.attempts if a.check == "dicom.service")
    assert service.status == "error" and not result.findings


def test_with_intrusive_the_c_move_answer_is_a_tell_only_for_honeypots(tmp_path: Path) -> None:
    # Given dicompot, DICOMHawk and real archives, audited with --intrusive (one C-MOVE of a
    # random, non-existent study to a random destination AE: nothing can move)
    studies = make_studies(2, seed=16)
    ports: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        ports["dicompot"] = stack.enter_context(run_in_thread(Dicompot())).port
        ports["dicomhawk"] = stack.enter_context(DicomHawk()).port
        ports["pynetdicom-qrscp"] = stack.enter_context(ExposedPacs(studies)).port
        if orthanc_available():
            orthanc = stack.enter_context(start_orthanc(tmp_path / "o", orthanc_open_dicom(), plugins=()))
            orthanc.upload(studies)
            ports["orthanc-open"] = orthanc.dicom_port
        if dcmtk_available(DCMQRSCP):
            qr = stack.enter_context(
                start_dcmqrscp(tmp_path / "qr", studies, called_aet="COMMON", allowed_calling=())
            )
            ports["dcmqrscp-guessed"] = qr.port
        report = scan([("127.0.0.1", p) for p in ports.values()], intrusive=True)
    moves = {
        n: attempt_details(result_for(report, p), "dicom.retrieve").get("move_status")
        for n, p in ports.items()
    }
    tells = {
        n: " ".join(map(str, honeypot_details(result_for(report, p))["tells"])) for n, p in ports.items()
    }  # type: ignore[call-overload]
    # Then the honeypots' answers (Success for nothing to nobody; pynetdicom's 0xC513) are tells
    assert (moves["dicompot"], moves["dicomhawk"]) == ("0x0000", "0xC513")
    assert (
        "move-random-destination-odd" in tells["dicompot"]
        and "move-random-destination-odd" in tells["dicomhawk"]
    )
    # And the real archives' answers are not
    for name in set(ports) - {"dicompot", "dicomhawk"}:
        assert "move-random-destination-odd" not in tells[name], (name, moves[name])


def test_count_honeypots_keeps_the_score_and_marks_nothing() -> None:
    # Given DICOMHawk audited with count_honeypots (the CLI's --count-honeypots)
    with DicomHawk() as hawk:
        report = scan([(hawk.host, hawk.port)], count_honeypots=True)
    result = result_for(report, hawk.port)
    # Then the honeypot finding still says so, but no finding is marked and the headline counts it
    assert honeypot_details(result)["suspected"] is True
    assert not any(f.suspected_honeypot for f in result.findings)
    assert exposure_of(report.findings).honeypots == 0


def test_a_higher_threshold_clears_a_suspect() -> None:
    # Given the fkie-cad server (one strong tell, 55) and a threshold of 60
    with HoneypotProcess("fkie") as fkie:
        report = scan([(fkie.host, fkie.port)], honeypot_threshold=60)
    result = result_for(report, fkie.port)
    # Then the score and tell are reported, below the threshold, and nothing is marked
    details = honeypot_details(result)
    assert details["score"] == 55 and details["suspected"] is False
    assert not any(f.suspected_honeypot for f in result.findings)
    assert any(f.check_id == CHECK_ID for f in result.findings)  # the tells stay visible


def test_cli_threshold_is_validated_and_the_summary_names_suspects(tmp_path: Path) -> None:
    # Given the CLI, a bad threshold, and then dicompot on loopback
    import subprocess
    import sys

    base = [sys.executable, "-m", "pacsradar", "scan", "--only", "dicom", "--no-default-ports", "--no-store"]
    bad = subprocess.run(
        [*base, "127.0.0.1", "-p", "9", "--honeypot-threshold", "101"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    # Then a bad threshold is a usage error, not a traceback
    assert bad.returncode == 2 and "--honeypot-threshold" in bad.stderr and "Traceback" not in bad.stderr
    with run_in_thread(Dicompot()) as server:
        done = subprocess.run(
            [*base, "127.0.0.1", "-p", str(server.port)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
    # And the summary counts the suspect
    assert "1 service suspected honeypot" in done.stdout + done.stderr, done.stdout + done.stderr
