"""Issue 22 item 5 and the web side, on real peers: the scan-level honeypot tells.

* DICOMHawk personas (tests/lab/hawk_personas.py) on distinct 127.x hosts serving one fake
  archive: a persona with pynetdicom's own identity (no tell of its own) next to the ge_ct
  persona (suspected on its own) is suspected for the archive it shares; two such quiet copies
  alone show the archive-fleet tell but stay below the threshold (a replicated pair looks alike);
* two real pynetdicom Q/R SCPs with byte-identical configurations and different patients: not;
* the customizer persona (``ORTHANC``) next to a real HTTP server on the host's port 8042 that
  answers one generic 404: the web-claimed-product-absent tell.

Stored scans read back the same (the store observer re-records re-scored services).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicom.helpers import FAST
from lab.hawk_personas import DicomHawkPersona
from pacsradar.config import ScanOptions
from pacsradar.dicom.honeypot.score import DEFAULT_THRESHOLD
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies
from pacsradar.models import Endpoint, ScanReport, TargetResult
from pacsradar.report.exposure import exposure_of
from pacsradar.scan import run_scan

pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
)

SUSPECT, QUIET, TWIN_A, TWIN_B, REAL_A, REAL_B, WEBHOST = (f"127.22.5.{i}" for i in range(1, 8))


class Default404(http.server.BaseHTTPRequestHandler):
    """A catch-all web listener: one plain 404 page for every path (a generic honeypot front)."""

    def do_GET(self) -> None:
        body = b"404 page not found\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@contextlib.contextmanager
def default_404(host: str, port: int) -> Iterator[int]:
    try:
        server = http.server.ThreadingHTTPServer((host, port), Default404)
    except OSError as exc:
        pytest.skip(f"{host}:{port} not bindable here ({exc.strerror})")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def hawk(persona: str, host: str) -> DicomHawkPersona:
    return DicomHawkPersona(persona, host=host)


@pytest.fixture(scope="module")
def lab(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ScanReport, ScanReport, dict[str, tuple[str, int]]]:
    from pacsradar.store import Store, StoreObserver

    tmp = tmp_path_factory.mktemp("scanwide")
    peers: dict[str, tuple[str, int]] = {}
    with contextlib.ExitStack() as stack:
        for name, persona, host in (
            ("suspect", "ge_ct", SUSPECT),
            ("quiet", "plain", QUIET),
            ("twin-a", "plain", TWIN_A),
            ("twin-b", "plain", TWIN_B),
            ("customizer", "customizer", WEBHOST),
        ):
            peers[name] = (host, stack.enter_context(hawk(persona, host)).port)
        # Two real archives, one configuration (a hospital's fleet), different patients
        for name, host, seed in (("real-a", REAL_A, 1), ("real-b", REAL_B, 2)):
            pacs = stack.enter_context(
                ExposedPacs(make_studies(3, seed=seed), host=host, port=0)
            )
            peers[name] = (host, pacs.port)
        peers["web-8042"] = (WEBHOST, stack.enter_context(default_404(WEBHOST, 8042)))
        # The quiet twins are scanned on their own: the suspect's archive would decide them
        twins = {"twin-a", "twin-b"}
        options = ScanOptions(
            limits=FAST,
            only=frozenset({"dicom", "web"}),
            dicom_ports=tuple(sorted({p for n, (_, p) in peers.items() if n != "web-8042"})),
            web_ports=(8042,),
        )
        main = [Endpoint(host=h, port=p) for n, (h, p) in peers.items() if n not in twins]
        store = Store(f"sqlite:///{tmp / 'scan.db'}")
        try:
            report = asyncio.run(run_scan(main, options, [StoreObserver(store)], total=len(main)))
            stored = store.load_report(report.scan_id)
        finally:
            store.close()
        pair = [Endpoint(host=h, port=p) for n, (h, p) in peers.items() if n in twins]
        twins_report = asyncio.run(run_scan(pair, options, total=len(pair)))
    report = ScanReport.model_validate(
        {**report.model_dump(), "results": [*report.results, *twins_report.results]}
    )
    return report, stored, peers


def result(report: ScanReport, peer: tuple[str, int]) -> TargetResult:
    return next(r for r in report.results if (r.endpoint.host, r.endpoint.port) == peer)


def honeypot(r: TargetResult) -> dict[str, object]:
    return dict(next(a.details for a in r.attempts if a.check == "dicom.honeypot"))


def cross(r: TargetResult) -> list[str]:
    return [str(t).split(" (+")[0] for t in honeypot(r).get("cross_tells", [])]  # type: ignore[attr-defined]


Lab = tuple[ScanReport, ScanReport, dict[str, tuple[str, int]]]


def test_a_quiet_persona_sharing_a_suspects_archive_is_suspected(lab: Lab) -> None:
    # Given the ge_ct persona (suspected on its own) and a persona with pynetdicom's own
    # identity on another host, both serving the same fake archive
    report, _, peers = lab
    quiet, suspect = result(report, peers["quiet"]), result(report, peers["suspect"])
    d = honeypot(quiet)
    # Then the quiet one had no tell of its own, and is suspected for the archive it shares
    assert d["service_score"] == 0, d
    assert "archive-shared-with-suspect" in cross(quiet)
    assert int(d["score"]) >= DEFAULT_THRESHOLD  # type: ignore[call-overload]
    assert quiet.findings and all(f.suspected_honeypot for f in quiet.findings)
    assert all(f.suspected_honeypot for f in suspect.findings)
    # And neither's fake patients reach the headline
    real = [f for r in report.results if r.endpoint.host in (REAL_A, REAL_B) for f in r.findings]
    scan = [f for r in report.results if r.endpoint.host not in (TWIN_A, TWIN_B) for f in r.findings]
    assert exposure_of(scan).patients == exposure_of(real).patients


def test_two_quiet_copies_alone_show_the_fleet_tell_below_the_threshold(lab: Lab) -> None:
    # Given two copies of the quiet persona on two hosts, scanned without the suspect
    report, _, peers = lab
    for name in ("twin-a", "twin-b"):
        r = result(report, peers[name])
        # Then byte-identical ACs serving one archive are seen, and alone mark nothing
        assert cross(r) == ["archive-fleet"], cross(r)
        assert int(honeypot(r)["score"]) < DEFAULT_THRESHOLD  # type: ignore[call-overload]
        assert not any(f.suspected_honeypot for f in r.findings)


def test_real_archives_with_one_configuration_are_not_marked(lab: Lab) -> None:
    # Given two real pynetdicom Q/R SCPs, identical configurations, different patients
    report, _, peers = lab
    for name in ("real-a", "real-b"):
        r = result(report, peers[name])
        # Then no scan-level tell, no mark
        assert cross(r) == [] and int(honeypot(r)["score"]) == 0, honeypot(r)  # type: ignore[call-overload]
        assert not any(f.suspected_honeypot for f in r.findings)


def test_a_claimed_orthanc_whose_web_port_is_a_generic_404(lab: Lab) -> None:
    # Given the customizer persona (version name ORTHANC) and, on its host, port 8042 answering
    # a generic 404 page
    report, _, peers = lab
    r = result(report, peers["customizer"])
    web = result(report, peers["web-8042"])
    assert next(a.details for a in web.attempts if a.check == "web.fingerprint")["root_status"] == 404
    # Then the web side is a tell, on top of its own identity tells
    assert "web-claimed-product-absent" in cross(r)
    assert int(honeypot(r)["score"]) > int(honeypot(r)["service_score"]) >= DEFAULT_THRESHOLD  # type: ignore[call-overload]


def test_the_stored_scan_reads_back_the_same_marks(lab: Lab, tmp_path: Path) -> None:
    # Given the scan streamed into a store (each endpoint stored before the scan-level pass)
    report, stored, peers = lab
    del tmp_path
    for name in ("quiet", "suspect", "real-a", "customizer"):
        live, back = result(report, peers[name]), result(stored, peers[name])
        # Then the stored scan carries the final scores and marks
        assert honeypot(back)["score"] == honeypot(live)["score"], name
        assert [f.suspected_honeypot for f in back.findings] == [f.suspected_honeypot for f in live.findings]
    assert (
        exposure_of(stored.findings).honeypots
        == exposure_of(
            [f for r in report.results if r.endpoint.host not in (TWIN_A, TWIN_B) for f in r.findings]
        ).honeypots
    )


def test_every_output_counts_the_cross_suspect_apart(lab: Lab) -> None:
    import json

    from pacsradar.report.context import ReportContext
    from pacsradar.report.dispatch import render

    # Given the main scan (the twins were a separate scan)
    report, stored, peers = lab
    quiet = "{}:{}".format(*peers["quiet"])
    for source in (report, stored):
        main = source.model_copy(
            update={"results": tuple(r for r in source.results if r.endpoint.host not in (TWIN_A, TWIN_B))}
        )
        ctx = ReportContext(report=main)
        # When rendered as JSON, Markdown and HTML
        doc = json.loads(render("json", ctx))
        marks = {
            f["evidence"].get("suspected_honeypot", False)
            for r in doc["results"]
            for f in r["findings"]
            if f"{r['endpoint']['host']}:{r['endpoint']['port']}" == quiet
        }
        # Then the quiet persona's findings are marked, and the headlines count 3 suspects apart
        assert marks == {True}
        assert "3 services look like honeypots" in render("md", ctx)
        assert "3 services look like honeypots" in render("html", ctx)
