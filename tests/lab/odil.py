"""odil 0.12 (Debian ``python3-odil``) as a C-ECHO/C-FIND SCP with its default acceptor.

python3-odil is built for Debian's system Python (``/usr/bin/python3``), not the project's, so
the SCP (``peers/odil_find_scp.py``, our own code) runs as a subprocess of that interpreter.
odil binds 0.0.0.0 (``Association.receive_association("v4", port)``): each instance gets its
own free port and the tests only connect to 127.0.0.1 (HACKING.md rule 4).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from lab.ports import pick_ports, wait_for_echo

__all__ = ["OdilPeer", "odil_available", "start_odil"]

SYSTEM_PYTHON = Path("/usr/bin/python3")
SCRIPT = Path(__file__).with_name("peers") / "odil_find_scp.py"
#: study-level attributes the SCP returns (keyword -> str value), from the synthetic studies
_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate")


def odil_available() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import odil"], capture_output=True, check=False)
    return probe.returncode == 0


@dataclass
class OdilPeer:
    port: int
    proc: subprocess.Popen[bytes]


def study_records(studies: Sequence[Dataset]) -> list[dict[str, str]]:
    """One record per distinct study (what a STUDY-level C-FIND returns), synthetic values."""
    seen: dict[str, dict[str, str]] = {}
    for ds in studies:
        record = {k: str(ds.get(k, "")) for k in _KEYS if str(ds.get(k, ""))}
        seen.setdefault(str(ds.StudyInstanceUID), record)
    return list(seen.values())


@contextlib.contextmanager
def start_odil(workdir: Path, studies: Sequence[Dataset]) -> Iterator[OdilPeer]:
    workdir.mkdir(parents=True, exist_ok=True)
    records = workdir / "records.json"
    records.write_text(json.dumps(study_records(studies)))
    port = pick_ports()[0]  # a candidate below the ephemeral range; readiness is owned by proc
    proc = subprocess.Popen(
        [str(SYSTEM_PYTHON), str(SCRIPT), str(port), str(records)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
    )  # fmt: skip
    try:
        wait_for_echo(port, proc, "odil SCP")
        yield OdilPeer(port=port, proc=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
