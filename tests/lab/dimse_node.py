"""A dcmjs-dimse (npm) Query/Retrieve SCP on Node.js as a real peer: ``tests/lab/node/scp.js``.

``scripts/test.sh`` installs the pinned package into ``tests/lab/node/node_modules`` with
``npm ci`` (package-lock.json); tests skip only when Node or that directory is absent.
dcmjs-dimse answers A-ASSOCIATE-AC with its own Implementation Class UID
``1.2.826.0.1.3680043.10.854`` and version name ``DCMJS-DIMSE-V0.2`` (verified live,
tests/dicom/test_more_peers.py). Node's server binds every interface, so each instance gets
its own port (lab.ports.start_on_free_port) and the tests talk to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset

from lab.ports import PeerStartError, start_on_free_port, stop_process, wait_for_port

NODE_DIR = Path(__file__).parent / "node"
SCP_JS = NODE_DIR / "scp.js"

__all__ = ["NODE_DIR", "NodeScp", "dcmjs_dimse_available", "start_dcmjs_scp", "study_records"]

_STUDY_KEYS = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
    "StudyTime", "AccessionNumber", "StudyID", "StudyDescription",
)  # fmt: skip


def dcmjs_dimse_available() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "dcmjs-dimse").is_dir()


def study_records(datasets: Iterable[Dataset]) -> list[dict[str, str]]:
    """One STUDY-level record per distinct study, with its instance count (PS3.4 C.3.4)."""
    studies: dict[str, dict[str, str]] = {}
    counts: dict[str, int] = {}
    for ds in datasets:
        uid = str(ds.StudyInstanceUID)
        counts[uid] = counts.get(uid, 0) + 1
        if uid not in studies:
            studies[uid] = {k: str(ds.get(k, "")) for k in _STUDY_KEYS}
    for uid, record in studies.items():
        record["NumberOfStudyRelatedInstances"] = str(counts[uid])
    return list(studies.values())


@dataclass
class NodeScp:
    process: subprocess.Popen[bytes]
    port: int
    _log: Any = field(default=None, repr=False)

    def stop(self) -> None:
        stop_process(self.process)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> NodeScp:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_dcmjs_scp(workdir: Path, datasets: Iterable[Dataset], *, timeout: float = 30.0) -> NodeScp:
    if not dcmjs_dimse_available():
        raise PeerStartError("node or tests/lab/node/node_modules/dcmjs-dimse is missing")
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "studies.json"
    data.write_text(json.dumps(study_records(datasets)))

    def start(ports: list[int]) -> NodeScp:
        log = (workdir / "scp.log").open("ab")
        proc = subprocess.Popen(
            ["node", str(SCP_JS), str(ports[0]), str(data)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=NODE_DIR,
        )  # fmt: skip
        peer = NodeScp(proc, ports[0], _log=log)
        try:
            wait_for_port(ports[0], proc=proc, timeout=timeout, what="dcmjs-dimse SCP")
        except BaseException:
            peer.stop()
            raise
        return peer

    return start_on_free_port(start, attempts=3)
