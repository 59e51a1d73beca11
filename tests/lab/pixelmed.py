"""PixelMed's DicomAndWebStorageServer (Debian ``libpixelmed-java``), in a namespace of its own.

The server always starts DNS-SD (multicast DNS, jmdns) and LDAP discovery of other DICOM
applications (``NetworkApplicationInformationFederated.startupAllKnownSourcesAndRegister``,
read from the 20220618 jar with ``javap``); neither can be switched off by a property. The
network rule of the suite allows no packet beyond loopback, so the server runs in a network
namespace made for it with nothing but ``lo`` (root only): multicast and DNS find no route and
fail inside. Everything that talks to it (the upload, the readiness probes and the pacsradar
scan itself) runs in the same namespace, as subprocesses; the scan writes its JSON report to
a file that the test reads.

Properties (from the jar's strings: NetworkApplicationProperties, WebServerApplicationProperties,
DatabaseApplicationProperties): ``Dicom.ListeningPort``, ``Dicom.CalledAETitle``,
``WebServer.ListeningPort``, ``Application.DatabaseFileName``, ``Application.SavedImagesFolderName``.
Its web side serves ``/`` (a page linking ``?requestType=PATIENTLIST``) and the request types;
an unknown path gets no answer at all (the connection stays open), which is what issue 22 saw
as 'could not test: ReadTimeout'.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from lab.netns import netns_skip_reason
from lab.ports import PeerStartError
from pacsradar.lab.synthetic import write_part10

__all__ = ["AE_TITLE", "PixelMedPeer", "pixelmed_skip_reason", "start_pixelmed"]

JAR = Path("/usr/share/java/pixelmed.jar")
JAVA = shutil.which("java")
STORESCU = Path("/usr/bin/storescu")
ECHOSCU = Path("/usr/bin/echoscu")
IP = shutil.which("ip") or "/usr/sbin/ip"
AE_TITLE = "STORESCP"  # PixelMed's own default (DicomAndWebStorageServer), one pacsradar guesses
DICOM_PORT = 11112
WEB_PORT = 7091
SRC = Path(__file__).resolve().parents[2] / "src"


def pixelmed_skip_reason() -> str | None:
    if not JAR.exists() or JAVA is None:
        return "Debian libpixelmed-java (and a java runtime) not installed"
    if not (STORESCU.exists() and ECHOSCU.exists()):
        return "DCMTK storescu/echoscu missing (used to load and probe PixelMed)"
    return netns_skip_reason()


@dataclass
class PixelMedPeer:
    ns: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    dicom_port: int = DICOM_PORT
    web_port: int = WEB_PORT

    def argv(self, argv: Sequence[str]) -> list[str]:
        return [IP, "netns", "exec", self.ns, *argv]

    def run(self, argv: Sequence[str], timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.argv(argv), capture_output=True, timeout=timeout, check=False)

    def upload(self, studies: Sequence[Dataset]) -> None:
        files = write_part10(studies, self.workdir / "upload")
        done = self.run(
            [str(STORESCU), "-aec", AE_TITLE, "127.0.0.1", str(self.dicom_port), *map(str, files)]
        )
        if done.returncode != 0:
            raise PeerStartError(f"storescu into PixelMed failed: {done.stderr[-300:]!r}")

    def scan(self, *args: str) -> dict[str, Any]:
        """``pacsradar scan`` of this worktree, inside the namespace; the JSON report, parsed."""
        out = self.workdir / f"report-{secrets.token_hex(3)}.json"
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        argv = [
            sys.executable, "-m", "pacsradar", "scan", "127.0.0.1",
            "-p", f"{self.dicom_port},{self.web_port}", "-f", "json", "-o", str(out), "--no-store",
            "--read-timeout", "3", *args,
        ]  # fmt: skip
        done = subprocess.run(self.argv(argv), capture_output=True, timeout=300, check=False, env=env)
        if not out.exists():
            raise AssertionError(f"scan wrote no report (rc {done.returncode}): {done.stderr[-500:]!r}")
        data: dict[str, Any] = json.loads(out.read_text())
        return data

    def _ready(self) -> bool:
        echo = self.run([str(ECHOSCU), "-aec", AE_TITLE, "127.0.0.1", str(self.dicom_port)], timeout=20)
        if echo.returncode != 0:
            return False
        probe = (
            "import urllib.request as u;"
            f"print(u.urlopen('http://127.0.0.1:{self.web_port}/', timeout=5).status)"
        )
        web = self.run([sys.executable, "-c", probe], timeout=20)
        return web.returncode == 0 and web.stdout.strip() == b"200"

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise PeerStartError(f"PixelMed exited with {self.proc.returncode}")
            if self._ready():
                return
            time.sleep(0.5)
        raise PeerStartError("PixelMed did not answer C-ECHO and GET / in time")


def _properties(workdir: Path) -> Path:
    path = workdir / "pixelmed.properties"
    (workdir / "images").mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n".join(
            (
                f"Dicom.ListeningPort={DICOM_PORT}",
                f"Dicom.CalledAETitle={AE_TITLE}",
                f"Dicom.CallingAETitle={AE_TITLE}",
                "Dicom.PrimaryDeviceType=ARCHIVE",
                f"Application.DatabaseFileName={workdir / 'db'}",
                f"Application.SavedImagesFolderName={workdir / 'images'}",
                f"WebServer.ListeningPort={WEB_PORT}",
                "WebServer.NumberOfWorkers=4",
                "",
            )
        )
    )
    return path


@contextlib.contextmanager
def start_pixelmed(workdir: Path) -> Iterator[PixelMedPeer]:
    """A running DicomAndWebStorageServer in a fresh loopback-only namespace; removed on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    ns = f"i22pm{secrets.token_hex(3)}"
    subprocess.run([IP, "netns", "add", ns], check=True, capture_output=True)
    peer = PixelMedPeer(ns=ns, workdir=workdir)
    log = (workdir / "pixelmed.log").open("wb")
    try:
        subprocess.run([IP, "-n", ns, "link", "set", "lo", "up"], check=True, capture_output=True)
        props = _properties(workdir)
        assert JAVA is not None
        peer.proc = subprocess.Popen(
            peer.argv([JAVA, "-Djava.awt.headless=true", "-cp", str(JAR),
                       "com.pixelmed.server.DicomAndWebStorageServer", str(props)]),
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True,
        )  # fmt: skip
        peer.wait_ready()
        yield peer
    finally:
        if peer.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(peer.proc.pid, 15)
            try:
                peer.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(peer.proc.pid, 9)
                peer.proc.wait(15)
        log.close()
        subprocess.run([IP, "netns", "del", ns], capture_output=True, check=False)
