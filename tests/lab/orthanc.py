"""Start real Orthanc 1.10.1 instances (Debian ``orthanc`` + ``orthanc-dicomweb``) for tests.

Orthanc binds 0.0.0.0 for both HTTP and DICOM, so every instance gets its own free ports and
all traffic from the tests goes to 127.0.0.1 only (HACKING.md rule 4). Orthanc logs to files
under its work directory (``--logdir``), never to the test's output.

Experimentally verified on Orthanc 1.10.1 (tests/test_lab_smoke.py keeps them honest):

* ``DicomAlwaysAllowFind`` (and ``...Get``/``...Move``) default to false, yet an unknown
  calling AE still gets A-ASSOCIATE-AC with every proposed context accepted (FIND, GET, MOVE,
  storage) and C-ECHO succeeds (``DicomAlwaysAllowEcho``/``Store`` default true). Its C-FIND,
  C-GET or C-MOVE request then gets no response at all: Orthanc sends A-ABORT (source 0
  service-user, reason 0; PS3.8 §9.3.8) and logs "Rejected Find request". "Refused" thus
  looks like an abort after P-DATA, never like a DIMSE failure status.
* ``DicomCheckCalledAet`` defaults to false: any called AE title is accepted.
* ``AuthenticationEnabled`` true with no ``RegisteredUsers``: Orthanc creates the user
  ``orthanc``/``orthanc`` ("Your setup is INSECURE"); anonymous requests get 401.
* :func:`orthanc_hardened` DICOM: unknown calling AE with the right called AE gets
  A-ASSOCIATE-RJ 1/1/3 (calling AE not recognised), a wrong called AE 1/1/7 (PS3.8 §9.3.4).
* ``SslEnabled`` crashes Debian's Orthanc on the first handshake; see :mod:`lab.tlsfront`.
* ``RemoteAccessAllowed`` false only affects HTTP from non-loopback addresses, so tests on
  127.0.0.1 cannot observe it.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydicom.dataset import Dataset

from lab.ports import LOOPBACK, PeerStartError, listens_on, start_on_free_port, stop_process, wait_for_port
from lab.tlsfront import TlsFront, native_orthanc_https_broken
from pacsradar.lab.synthetic import to_part10_bytes

__all__ = [
    "ORTHANC_BIN",
    "PLUGIN_DIR",
    "Orthanc",
    "dicomweb_plugin_available",
    "orthanc_auth_no_users",
    "orthanc_available",
    "orthanc_default",
    "orthanc_hardened",
    "orthanc_open_dicom",
    "orthanc_open_web",
    "start_orthanc",
]

ORTHANC_BIN = Path("/usr/sbin/Orthanc")
PLUGIN_DIR = Path("/usr/share/orthanc/plugins")
_START_ATTEMPTS = 3


def orthanc_available() -> bool:
    return ORTHANC_BIN.is_file() and os.access(ORTHANC_BIN, os.X_OK)


def orthanc_default() -> dict[str, Any]:
    """Orthanc's own defaults (only ports and directories are set by the launcher)."""
    return {}


def orthanc_open_dicom() -> dict[str, Any]:
    """DICOM wide open: any calling/called AE may echo, find, get, move and store."""
    return {
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomAlwaysAllowStore": True,
        "DicomCheckCalledAet": False,
    }


def orthanc_open_web() -> dict[str, Any]:
    """REST API and DICOMweb reachable by anyone, no authentication."""
    return {"RemoteAccessAllowed": True, "AuthenticationEnabled": False}


def orthanc_auth_no_users() -> dict[str, Any]:
    """Authentication switched on but nobody registered (a frequent half-configuration)."""
    return {"RemoteAccessAllowed": True, "AuthenticationEnabled": True, "RegisteredUsers": {}}


def orthanc_hardened(cert_path: Path) -> dict[str, Any]:
    """HTTPS only (TLS >= 1.2), one user with a strong random password, DICOM locked down.

    ``cert_path`` is a PEM with private key and certificate together (``CertPair.combined``).
    The password is in ``config["RegisteredUsers"]``.
    """
    return {
        "RemoteAccessAllowed": True,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {"radiology-admin": secrets.token_urlsafe(24)},
        "SslEnabled": True,
        "SslCertificate": str(cert_path),
        "SslMinimumProtocolVersion": 4,  # TLS 1.2 (Orthanc 1.9.0+ option)
        "DicomAet": "HARDENED",
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "ExecuteLuaEnabled": False,
        "RestApiWriteToFileSystemEnabled": False,
    }


@dataclass
class Orthanc:
    """A running Orthanc; ``stop()`` (or the context manager) terminates and reaps it."""

    workdir: Path
    config: dict[str, Any]
    config_path: Path
    http_port: int
    dicom_port: int
    process: subprocess.Popen[bytes]
    #: Orthanc's own (plain) HTTP port; differs from http_port only behind a TLS front.
    backend_http_port: int = 0
    front: TlsFront | None = None
    _log: Any = field(repr=False, default=None)

    @property
    def scheme(self) -> str:
        return "https" if self.config.get("SslEnabled") else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.http_port}"

    @property
    def dicom_aet(self) -> str:
        return str(self.config.get("DicomAet", "ORTHANC"))

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def client(self, auth: tuple[str, str] | None = None, timeout: float = 30.0) -> httpx.Client:
        """HTTP client for this instance; HTTPS is verified against the instance's own cert."""
        verify: ssl.SSLContext | bool = True
        if self.scheme == "https":
            verify = ssl.create_default_context(cafile=str(self.config["SslCertificate"]))
        # trust_env=False: never route loopback traffic through an environment proxy.
        return httpx.Client(
            base_url=self.base_url, auth=auth, timeout=timeout, verify=verify, trust_env=False
        )

    def upload(self, datasets: Iterable[Dataset], auth: tuple[str, str] | None = None) -> list[str]:
        """POST each data set as Part 10 bytes to ``/instances``; return Orthanc instance IDs."""
        ids: list[str] = []
        with self.client(auth) as http:
            for ds in datasets:
                rsp = http.post(
                    "/instances",
                    content=to_part10_bytes(ds),
                    headers={"Content-Type": "application/dicom"},
                )
                rsp.raise_for_status()
                ids.append(str(rsp.json()["ID"]))
        return ids

    def stop(self, timeout: float = 20.0) -> None:
        if self.front is not None:
            self.front.stop()
            self.front = None
        stop_process(self.process, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Orthanc:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _wait_http(orthanc: Orthanc, timeout: float) -> None:
    """Ready once /system answers at all: 200, or 401/403 when authentication is on."""
    deadline = time.monotonic() + timeout
    with orthanc.client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if orthanc.process.poll() is not None:
                raise PeerStartError(f"Orthanc exited with status {orthanc.process.returncode}")
            try:
                if http.get("/system").status_code in (200, 401, 403):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise PeerStartError(f"Orthanc HTTP did not answer within {timeout:.0f}s")


def start_orthanc(
    workdir: Path,
    config: Mapping[str, Any] | None = None,
    *,
    plugins: Sequence[str] = ("libOrthancDicomWeb.so",),
    timeout: float = 30.0,
    verbose: bool = False,
    tls_front: bool | None = None,
) -> Orthanc:
    """Write a config under ``workdir``, start /usr/sbin/Orthanc, wait until HTTP and DICOM
    answer. Ports are chosen per attempt (lab.ports.start_on_free_port); a start that dies (port
    raced away) or whose ports answer for another process is retried.

    With ``SslEnabled`` and ``tls_front`` (default: only where Orthanc's own HTTPS crashes,
    see :mod:`lab.tlsfront`), Orthanc serves plain HTTP on a hidden port and ``http_port`` /
    ``base_url`` are an HTTPS relay presenting the configured certificate.
    """
    if tls_front is None:
        tls_front = bool((config or {}).get("SslEnabled")) and native_orthanc_https_broken()
    if not orthanc_available():
        raise PeerStartError(f"{ORTHANC_BIN} is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    return start_on_free_port(
        lambda ports: _start_once(ports, workdir, dict(config or {}), plugins, timeout, verbose, tls_front),
        count=2,
        attempts=_START_ATTEMPTS,
    )


def _start_once(
    ports: list[int],
    workdir: Path,
    overrides: dict[str, Any],
    plugins: Sequence[str],
    timeout: float,
    verbose: bool,
    tls_front: bool,
) -> Orthanc:
    http_port, dicom_port = ports
    (workdir / "logs").mkdir(exist_ok=True)
    storage = workdir / "storage"
    config: dict[str, Any] = {
        "Name": f"pacsradar-lab-{workdir.name}",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "Plugins": [str(PLUGIN_DIR / p) if "/" not in p else p for p in plugins],
        "SaveJobs": False,
        "DicomModalities": {},
        "OrthancPeers": {},
    }
    config.update(overrides)
    http_port, dicom_port = int(config["HttpPort"]), int(config["DicomPort"])
    written = dict(config)
    if tls_front:
        written["SslEnabled"] = False
        written.pop("SslCertificate", None)
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(written, indent=2))
    args = [str(ORTHANC_BIN), f"--logdir={workdir / 'logs'}", "--no-jobs"]
    if verbose:
        args.append("--verbose")
    # Output that Orthanc prints before its logger is set up also goes to a file.
    log = (workdir / "logs" / "console.log").open("ab")
    proc = subprocess.Popen([*args, str(config_path)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    orthanc = Orthanc(workdir, config, config_path, http_port, dicom_port, proc, http_port)
    orthanc._log = log
    try:
        if tls_front:
            orthanc.front = TlsFront(Path(config["SslCertificate"]), http_port)
            orthanc.http_port = orthanc.front.start()
        _wait_http(orthanc, timeout)
        if not listens_on(proc, http_port):
            raise PeerStartError(f"HTTP port {http_port} answered for another process")
        if config.get("DicomServerEnabled", True):
            wait_for_port(dicom_port, proc=proc, timeout=timeout, what="Orthanc DICOM")
    except BaseException:
        orthanc.stop()
        raise
    return orthanc


def dicomweb_plugin_available() -> bool:
    return (PLUGIN_DIR / "libOrthancDicomWeb.so").is_file()
