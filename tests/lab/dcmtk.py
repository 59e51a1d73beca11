"""DCMTK 3.6.7 peers (Debian ``dcmtk``): an AE-restricted ``dcmqrscp`` and a TLS ``storescp``.

Absolute /usr/bin paths on purpose: pynetdicom's pyenv shims shadow ``storescp``/``echoscu``.
Both programs bind 0.0.0.0, so each instance gets its own free port (HACKING.md rule 4).
Both run in their own session so ``stop()`` can end the forked association children too.

Experimentally verified against dcmqrscp 3.6.7 with a pynetdicom requestor (see
tests/test_lab_smoke.py), A-ASSOCIATE-RJ fields per PS3.8 §9.3.4 / Table 9-21:

* unknown called AE title:  result 1 (rejected-permanent), source 1 (DICOM UL service-user),
  reason 7 (called-AE-title-not-recognized);
* known called AE but calling AE not in its peer list: the SAME result 1, source 1, reason 7,
  not reason 3 - dcmqrscp checks both with one ``peerInAETitle()`` call and refuses with
  ``CTN_BadAEService`` (dcmqrsrv.cc ``waitForAssociation``). A scanner cannot tell the two
  apart from dcmqrscp's A-ASSOCIATE-RJ alone.
* dcmqrscp closes TCP right after the RJ; pynetdicom's requestor then sometimes reports
  "aborted" rather than "rejected", so tests read the RJ PDU itself.
* The readiness probe (connect, close) makes dcmqrscp log one harmless "Association Reject
  Failed ... state 1 event 7". Fork mode (its default) is kept: with ``--single-process``
  our trials saw every association after the first one closed without a PDU.

storescp 3.6.7 TLS (``storescp --help``, ``+cc``): security profiles ``+py`` BCP 195
non-downgrading (default), ``+px`` BCP 195, ``+pz`` extended BCP 195, ``+pa`` the retired AES
profile, ``+pn`` the retired authenticated-but-unencrypted NULL profile; ``+cs NAME`` adds a
ciphersuite (not with ``+pz``); ``-ic`` stops it demanding a client certificate (``-rc``, i.e.
"require peer certificate", is its default). Measured with Python 3.11 ``ssl`` (OpenSSL 3.0):

* ``+py``: TLS 1.3 by default, TLS 1.2 with ECDHE/DHE AEAD; refuses TLS 1.0/1.1, static RSA.
* ``+px``: same defaults, but also accepts TLS 1.0/1.1 and static-RSA AES128-SHA (downgrade).
* ``+pz``: TLS 1.2 only (no 1.3), DHE/ECDHE AEAD only.
* ``+pa``: only TLS_RSA_WITH_AES_128_CBC_SHA (static RSA, CBC, SHA-1), TLS 1.0-1.2; Python's
  default client cannot connect at all (no shared cipher).
* ``+pn``: only TLS_RSA_WITH_NULL_SHA (no encryption), TLS 1.2.
* ``+py`` combined with ``+cs`` makes storescp exit with status 1; ``+px +cs X`` works.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset

from lab.ports import LOOPBACK, PeerStartError, start_on_free_port, wait_for_port
from lab.tls import CertPair, make_self_signed
from pacsradar.lab.synthetic import write_part10

__all__ = [
    "DCMQRIDX",
    "DCMQRSCP",
    "STORESCP",
    "TLS_PROFILES",
    "DcmtkPeer",
    "dcmtk_available",
    "start_dcmqrscp",
    "start_storescp_tls",
]

DCMQRSCP = Path("/usr/bin/dcmqrscp")
DCMQRIDX = Path("/usr/bin/dcmqridx")
STORESCP = Path("/usr/bin/storescp")

#: storescp security profile flags (``storescp --help``, "security profile").
TLS_PROFILES: dict[str, str] = {
    "bcp195-nd": "+py",  # Non-downgrading BCP 195: TLS 1.2+, ECDHE/DHE AEAD suites (default)
    "bcp195": "+px",  # BCP 195
    "bcp195-ex": "+pz",  # Extended BCP 195
    "aes": "+pa",  # retired "AES TLS Secure Transport Connection Profile" (weak)
    "null": "+pn",  # retired "authenticated unencrypted communication" (NULL cipher, weak)
}
_START_ATTEMPTS = 3


def dcmtk_available(*binaries: Path) -> bool:
    return all(b.is_file() and os.access(b, os.X_OK) for b in binaries or (DCMQRSCP, STORESCP))


@dataclass
class DcmtkPeer:
    """A running DCMTK server; ``stop()`` terminates its whole process group and reaps it."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    ae_title: str
    workdir: Path
    host: str = LOOPBACK
    extra: dict[str, Any] = field(default_factory=dict)
    _log: Any = field(default=None, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            # The group id is the pid of the process we started (start_new_session=True).
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        else:
            self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DcmtkPeer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _launch(name: str, argv_for_port: Any, workdir: Path, ae_title: str, timeout: float) -> DcmtkPeer:
    """Start ``argv_for_port(port)``; a port taken before DCMTK bound it is retried on another."""

    def start(ports: list[int]) -> DcmtkPeer:
        port = ports[0]
        log = (workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv_for_port(port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
        )
        peer = DcmtkPeer(name, proc, port, ae_title, workdir, _log=log)
        try:
            wait_for_port(port, proc=proc, timeout=timeout, what=name)
        except BaseException:
            peer.stop()
            raise
        return peer

    return start_on_free_port(start, attempts=_START_ATTEMPTS)


#: public name for other lab modules (tests/lab/worklist.py starts wlmscpfs with it)
launch = _launch


def dcmqrscp_config(
    port: int, called_aet: str, storage: Path, peers: Sequence[str], access: str = "R"
) -> str:
    """A dcmqrscp.cfg (format: DCMTK's dcmqrscp.txt / /etc/dcmtk/dcmqrscp.cfg) allowing only ``peers``.

    HostTable entries are (AE title, host, port); with ``--disable-host-lookup`` the host
    dcmqrscp compares against is the peer's dotted IP, so 127.0.0.1 here.
    """
    hosts = "\n".join(f"peer{i} = ({aet}, {LOOPBACK}, 0)" for i, aet in enumerate(peers))
    peer_names = ", ".join(f"peer{i}" for i in range(len(peers))) or "ANY"
    return (
        f"NetworkTCPPort  = {port}\n"
        "MaxPDUSize      = 16384\n"
        "MaxAssociations = 16\n\n"
        f"HostTable BEGIN\n{hosts}\nHostTable END\n\n"
        "VendorTable BEGIN\nVendorTable END\n\n"
        "AETable BEGIN\n"
        f"{called_aet}  {storage}  {access}  (200, 1024mb)  {peer_names}\n"
        "AETable END\n"
    )


def start_dcmqrscp(
    workdir: Path,
    datasets: Iterable[Dataset] = (),
    *,
    called_aet: str = "HOSPQR",
    allowed_calling: Sequence[str] = ("ALLOWED",),
    timeout: float = 30.0,
) -> DcmtkPeer:
    """dcmqrscp whose only AE (``called_aet``) accepts only ``allowed_calling`` peers.

    The storage area is populated with ``datasets`` via ``dcmqridx`` before start; the index
    is read-only for peers (access ``R``), so nothing a test sends is ever stored.
    """
    if not dcmtk_available(DCMQRSCP, DCMQRIDX):
        raise PeerStartError(f"{DCMQRSCP} or {DCMQRIDX} is not installed")
    storage = workdir / "qrdb" / called_aet
    storage.mkdir(parents=True, exist_ok=True)
    files = write_part10(datasets, storage)
    if files:
        subprocess.run(
            [str(DCMQRIDX), "-q", str(storage), *map(str, files)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    config = workdir / "dcmqrscp.cfg"

    def argv(port: int) -> list[str]:
        config.write_text(dcmqrscp_config(port, called_aet, storage, allowed_calling))
        # -dhl: no reverse DNS of the peer address (HACKING.md rule 4, no DNS in tests).
        return [str(DCMQRSCP), "-c", str(config), "-dhl", "-ta", "10", "-td", "30", str(port)]

    peer = _launch("dcmqrscp", argv, workdir, called_aet, timeout)
    peer.extra.update(allowed_calling=tuple(allowed_calling), files=len(files))
    return peer


def start_storescp_tls(
    workdir: Path,
    *,
    profile: str = "bcp195-nd",
    ciphers: Sequence[str] = (),
    cert: CertPair | None = None,
    require_client_cert: bool = False,
    ae_title: str = "TLSSCP",
    timeout: float = 30.0,
) -> DcmtkPeer:
    """storescp speaking DICOM over TLS (PS3.15 Annex B) with a fresh self-signed RSA-2048.

    ``profile`` picks a key of :data:`TLS_PROFILES` (``"aes"``/``"null"`` are the weak ones);
    received objects go to ``workdir/incoming`` (the tests only ever send synthetic data).
    """
    if not dcmtk_available(STORESCP):
        raise PeerStartError(f"{STORESCP} is not installed")
    if profile not in TLS_PROFILES:
        raise ValueError(f"unknown storescp TLS profile {profile!r}")
    cert = cert or make_self_signed(workdir / "tls", "storescp")
    incoming = workdir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    args = [
        str(STORESCP),
        "+tls", str(cert.key), str(cert.cert),
        "-pw",  # the key has no password; never prompt on stdin
        TLS_PROFILES[profile],
        "-rc" if require_client_cert else "-ic",
        "-aet", ae_title,
        "-od", str(incoming),
        "-dhl",  # no reverse DNS of the peer address (no DNS in tests)
        "-ta", "10", "-ts", "30",
    ]  # fmt: skip
    for suite in ciphers:
        args += ["+cs", suite]
    peer = _launch("storescp", lambda port: [*args, str(port)], workdir, ae_title, timeout)
    peer.extra.update(cert=cert, profile=profile, ciphers=tuple(ciphers))
    return peer
