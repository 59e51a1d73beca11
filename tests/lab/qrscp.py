"""pynetdicom's own Query/Retrieve SCP application (``python -m pynetdicom qrscp``) as a real peer.

Verified against pynetdicom 3.0 (tests/dicom/test_distinct_counts.py): its C-FIND searches its
instance table and sends one response per matching *instance*, even at STUDY level, and returns
only the required and unique keys (no NumberOfStudyRelatedInstances). A scanner that counts
responses counts images as studies. It is populated over the network with C-STORE, as a
modality would, and listens on 127.0.0.1 only.
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

from lab.ports import LOOPBACK, PeerStartError, free_port, stop_process, wait_for_port

__all__ = ["QrScp", "start_qrscp"]

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


def start_qrscp(workdir: Path, *, ae_title: str = "QRSCP", timeout: float = 30.0) -> QrScp:
    workdir.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        port = free_port()
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
            [sys.executable, "-m", "pynetdicom", "qrscp", "-q", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
        peer = QrScp(proc, port, ae_title, workdir, _log=log)
        try:
            wait_for_port(port, proc=proc, timeout=timeout, what="pynetdicom qrscp")
        except PeerStartError:
            peer.stop()
            continue
        return peer
    raise PeerStartError("pynetdicom qrscp did not start")
