"""pynetdicom's own Query/Retrieve SCP application (``python -m pynetdicom qrscp``) as a real peer.

Verified against pynetdicom 3.0 (tests/dicom/test_distinct_counts.py): its C-FIND searches its
instance table and sends one response per matching *instance*, even at STUDY level, and returns
only the required and unique keys (no NumberOfStudyRelatedInstances). A scanner that counts
responses counts images as studies. It is populated over the network with C-STORE, as a
modality would, and listens on 127.0.0.1 only.

Observed (pynetdicom 3.0.4, qrscp -d log): the first association after a C-STORE association
that carries a User Identity item with positive response requested is logged as received and
then never answered; later ones are. :func:`start_qrscp` therefore loads the data with one
process and serves it with a fresh one on the same database (a restarted archive).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts

from lab.ports import LOOPBACK, PeerStartError, start_on_free_port, stop_process, wait_for_echo

__all__ = ["QrScp", "start_qrscp"]

#: "-q" (quiet); a debugging session may set "-d" here (it logs no identifiers: log_identifier is False)
QRSCP_VERBOSITY = "-q"

_CONFIG = """[DEFAULT]
    ae_title: {aet}
    port: {port}
    max_pdu: 16382
    acse_timeout: 10
    dimse_timeout: 10
    network_timeout: 30
    bind_address: {host}
    instance_location: {instances}
    database_location: {database}
    log_identifier: False
"""


@dataclass
class QrScp:
    process: subprocess.Popen[bytes]
    port: int
    ae_title: str
    workdir: Path
    host: str = LOOPBACK
    #: instances C-STORE'd before this process started
    stored: int = 0
    _log: Any = field(default=None, repr=False)

    def store(self, datasets: Iterable[Dataset]) -> int:
        """C-STORE each data set (what a modality does); returns how many were accepted."""
        ae = AE(ae_title="LABMODALITY")
        for cx in StoragePresentationContexts[:120]:
            if cx.abstract_syntax is not None:
                ae.add_requested_context(cx.abstract_syntax)
        assoc = ae.associate(self.host, self.port, ae_title=self.ae_title)
        if not assoc.is_established:
            raise PeerStartError("qrscp refused the storage association")
        stored = 0
        try:
            for ds in datasets:
                status = assoc.send_c_store(ds)
                if status and status.Status == 0x0000:
                    stored += 1
        finally:
            assoc.release()
        return stored

    def stop(self) -> None:
        stop_process(self.process)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> QrScp:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_qrscp(
    workdir: Path, datasets: Iterable[Dataset] = (), *, ae_title: str = "QRSCP", timeout: float = 30.0
) -> QrScp:
    """qrscp serving ``datasets`` (C-STORE'd into its own database by a first run, see above)."""
    materialised = list(datasets)
    if materialised:
        with _start(workdir, ae_title, timeout) as loader:
            stored = loader.store(materialised)
        if stored != len(materialised):
            raise PeerStartError(f"qrscp stored {stored} of {len(materialised)} instances")
    peer = _start(workdir, ae_title, timeout)
    peer.stored = len(materialised)
    return peer


def _start(workdir: Path, ae_title: str, timeout: float) -> QrScp:
    workdir.mkdir(parents=True, exist_ok=True)

    def start(ports: list[int]) -> QrScp:
        port = ports[0]
        config = workdir / "qrscp.ini"
        config.write_text(
            _CONFIG.format(
                aet=ae_title,
                port=port,
                host=LOOPBACK,
                instances=workdir / "instances",
                database=workdir / "instances.sqlite",
            )
        )
        log = (workdir / "qrscp.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pynetdicom", "qrscp", QRSCP_VERBOSITY, "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
        peer = QrScp(proc, port, ae_title, workdir, _log=log)
        try:
            # no bare TCP probe: see the module notes
            wait_for_echo(
                port, proc, "pynetdicom qrscp", host=peer.host, called_aet=ae_title, timeout=timeout
            )
        except BaseException:
            peer.stop()
            raise
        return peer

    return start_on_free_port(start, attempts=3)
