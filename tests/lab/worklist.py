"""Worklist peers for tests: synthetic scheduled procedure steps served by DCMTK's ``wlmscpfs``,
Orthanc's ModalityWorklists plugin and a pynetdicom MWL + UPS SCP (all on loopback).

Every value is invented by :mod:`faker` from a seed; with a ``canary`` each PHI-bearing
attribute carries it, so a test can prove no output ever does.

Measured against Debian's dcmtk 3.6.7 ``wlmscpfs`` and Orthanc 1.10.1's plugin (see
tests/dicom/test_worklist_peers.py for the assertions):

* ``wlmscpfs -dfp DIR``: the called AE title must name a folder of DIR, else the association is
  rejected (result 1, source 1, reason 7, called-AE-title-not-recognized); any calling AE is
  accepted. The worklist files are ``*.wl`` files made by ``dump2dcm`` from dump text.
* Orthanc's plugin (``Worklists.Enable``, ``Worklists.Database``: a folder of ``*.wl`` files)
  answers an unregistered calling AE only with ``DicomAlwaysAllowFindWorklist``; otherwise the
  query is refused.
"""

from __future__ import annotations

import gc
import random
import subprocess
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from faker import Faker
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from lab.dcmtk import DcmtkPeer, launch
from lab.ports import LOOPBACK

WLMSCPFS = Path("/usr/bin/wlmscpfs")
DUMP2DCM = Path("/usr/bin/dump2dcm")
#: PS3.4 Annex CC: UPS Pull (C-FIND of workitems) and Watch
UPS_PULL = "1.2.840.10008.5.1.4.34.6.3"
UPS_WATCH = "1.2.840.10008.5.1.4.34.6.2"
MWL_FIND = "1.2.840.10008.5.1.4.31"
MODALITIES = ("CT", "MR", "CR", "US")


@dataclass(frozen=True)
class Scheduled:
    """The truth a test compares pacsradar's counts with."""

    items: tuple[Dataset, ...]
    patients: int
    stations: int
    modalities: tuple[str, ...]


def make_worklist(
    items: int = 6,
    patients: int = 5,
    *,
    seed: int = 24,
    canary: str = "",
    today: date | None = None,
    patient_ids: Sequence[str] = (),
    issuer: str | None = "LABHOSP",
) -> Scheduled:
    """``items`` scheduled procedure steps for ``patients`` fake patients (PS3.4 K.6.1.2).

    The first patients take ``patient_ids`` (an archive's patients, scheduled again)."""
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    day = today or date.today()
    people = []
    for n in range(patients):
        name = f"{canary}{n}^{fake.first_name()}" if canary else f"{fake.last_name()}^{fake.first_name()}"
        pid = f"{canary}PID{n}" if canary else f"MRN{rng.randrange(10**6, 10**7)}"
        if n < len(patient_ids):
            pid = patient_ids[n]
        people.append((name.upper(), pid, fake.date_of_birth(minimum_age=1, maximum_age=90)))
    out = []
    stations = set()
    mods = set()
    for i in range(items):
        name, pid, dob = people[i % patients]
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.AccessionNumber = f"{canary}ACC{i}" if canary else f"A{rng.randrange(10**6, 10**7)}"
        ds.PatientName = name
        ds.PatientID = pid
        if issuer:
            ds.IssuerOfPatientID = issuer
        ds.PatientBirthDate = dob.strftime("%Y%m%d")
        ds.PatientSex = rng.choice("MF")
        ds.StudyInstanceUID = generate_uid()
        ds.RequestingPhysician = f"{canary}DR{i}^{fake.last_name()}".upper() if canary else "SMITH^JO"
        ds.RequestedProcedureDescription = "CT CHEST" if i % 2 else "MRI BRAIN"
        ds.RequestedProcedureID = f"RP{i:04d}"
        sps = Dataset()
        modality = MODALITIES[i % 3]
        station = f"STATION{i % 4}"
        mods.add(modality)
        stations.add(station)
        sps.Modality = modality
        sps.ScheduledStationAETitle = station
        sps.ScheduledProcedureStepStartDate = (day + timedelta(days=i % 2)).strftime("%Y%m%d")
        sps.ScheduledProcedureStepStartTime = f"{(8 + i) % 24:02d}0000"
        sps.ScheduledPerformingPhysicianName = f"{canary}PERF{i}^X" if canary else "JOHNSON^AL"
        sps.ScheduledProcedureStepDescription = "SCHEDULED EXAM"
        sps.ScheduledProcedureStepID = f"SPS{i:04d}"
        ds.ScheduledProcedureStepSequence = [sps]
        out.append(ds)
    return Scheduled(tuple(out), patients, len(stations), tuple(sorted(mods)))


def _dump_line(elem: Any) -> str:
    tag = f"({elem.tag.group:04x},{elem.tag.element:04x})"
    return f"{tag} {elem.VR} [{elem.value}]"


def to_dump(ds: Dataset) -> str:
    """DCMTK dump text (the format of /usr/share/doc/dcmtk/examples/wlistdb/OFFIS/*.dump)."""
    lines = []
    for elem in ds:
        if elem.VR == "SQ":
            lines.append(f"({elem.tag.group:04x},{elem.tag.element:04x}) SQ")
            for item in elem.value:
                lines.append("(fffe,e000) -")
                lines.extend(_dump_line(e) for e in item)
                lines.append("(fffe,e00d) -")
            lines.append("(fffe,e0dd) -")
        else:
            lines.append(_dump_line(elem))
    return "\n".join(lines) + "\n"


def write_wl_files(items: Iterable[Dataset], folder: Path) -> list[Path]:
    """One ``.wl`` per item, made by ``dump2dcm`` (the way DCMTK documents it)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, ds in enumerate(items):
        dump = folder / f"item{i}.dump"
        dump.write_text(to_dump(ds))
        wl = folder / f"item{i}.wl"
        subprocess.run([str(DUMP2DCM), str(dump), str(wl)], check=True, capture_output=True, timeout=30)
        dump.unlink()
        out.append(wl)
    return out


def start_wlmscpfs(workdir: Path, items: Sequence[Dataset], *, called_aet: str = "OFFIS") -> DcmtkPeer:
    """wlmscpfs serving ``items`` under the called AE ``called_aet`` (its folder name)."""
    db = workdir / "wlistdb"
    write_wl_files(items, db / called_aet)
    (db / called_aet / "lockfile").touch()
    return launch(
        "wlmscpfs",
        lambda port: [str(WLMSCPFS), "-dfp", str(db), str(port)],
        workdir,
        called_aet,
        30.0,
    )


def orthanc_worklist_config(database: Path, *, always_allow: bool) -> dict[str, Any]:
    """Orthanc with the ModalityWorklists plugin on (Orthanc's Plugins/Samples/ModalityWorklists)."""
    return {
        "Worklists": {"Enable": True, "Database": str(database)},
        "DicomAlwaysAllowFindWorklist": always_allow,
        "DicomAlwaysAllowEcho": True,
        "DicomCheckCalledAet": False,
    }


def _as_ups(ds: Dataset) -> Dataset:
    """The same scheduled step as a UPS workitem (PS3.4 CC.2.5, Table CC.2.5-3), top level."""
    ups = Dataset()
    ups.SOPClassUID = "1.2.840.10008.5.1.4.34.6.1"
    ups.SOPInstanceUID = generate_uid()
    ups.PatientName = ds.PatientName
    ups.PatientID = ds.PatientID
    if "IssuerOfPatientID" in ds:
        ups.IssuerOfPatientID = ds.IssuerOfPatientID
    ups.PatientBirthDate = ds.PatientBirthDate
    ups.PatientSex = ds.PatientSex
    ups.ProcedureStepState = "SCHEDULED"
    ups.ProcedureStepLabel = "SCHEDULED EXAM"
    sps = ds.ScheduledProcedureStepSequence[0]
    ups.ScheduledProcedureStepStartDateTime = sps.ScheduledProcedureStepStartDate + "080000"
    return ups


PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"


def patient_level(studies: Iterable[Dataset]) -> list[Dataset]:
    """One PATIENT-level C-FIND answer per patient of ``studies`` (PS3.4 C.6.1.1.2)."""
    by_id: dict[str, Dataset] = {}
    counts: dict[str, set[str]] = {}
    for st in studies:
        pid = str(st.PatientID)
        counts.setdefault(pid, set()).add(str(st.StudyInstanceUID))
        if pid not in by_id:
            ds = Dataset()
            ds.QueryRetrieveLevel = "PATIENT"
            ds.PatientName = st.PatientName
            ds.PatientID = pid
            ds.PatientBirthDate = st.get("PatientBirthDate", "")
            by_id[pid] = ds
    for pid, ds in by_id.items():
        ds.NumberOfPatientRelatedStudies = str(len(counts[pid]))
    return list(by_id.values())


class WorklistScp:
    """A pynetdicom SCP answering MWL and UPS C-FIND with every item, to any AE (no checks).

    With ``patient_root`` it is instead an archive that negotiates Patient Root FIND and GET but
    not Study Root, answering PATIENT-level C-FIND with those records (and no worklist)."""

    def __init__(
        self,
        scheduled: Scheduled,
        host: str = LOOPBACK,
        *,
        patient_root: Sequence[Dataset] = (),
        ignore_cancel: bool = False,
    ) -> None:
        from pynetdicom import AE, evt

        self.items = list(scheduled.items)
        self.workitems = [_as_ups(ds) for ds in scheduled.items]
        self.patients = list(patient_root)
        self.ignore_cancel = ignore_cancel
        self.host = host
        self.port = 0
        self.cancelled = threading.Event()
        ae = AE(ae_title="LABMWL")
        if self.patients:
            ae.add_supported_context(PATIENT_ROOT_FIND)
            ae.add_supported_context(PATIENT_ROOT_GET)
        else:
            ae.add_supported_context(MWL_FIND)
            ae.add_supported_context(UPS_PULL)
            ae.add_supported_context(UPS_WATCH)
        ae.add_supported_context("1.2.840.10008.1.1")
        self._ae = ae
        self._handlers = [(evt.EVT_C_FIND, self._find)]
        self._server: Any = None

    def _find(self, event: Any) -> Any:
        uid = str(event.request.AffectedSOPClassUID)
        source = {MWL_FIND: self.items, PATIENT_ROOT_FIND: self.patients}.get(uid, self.workitems)
        for ds in source:
            if event.is_cancelled and not self.ignore_cancel:
                self.cancelled.set()
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    def __enter__(self) -> WorklistScp:
        self._server = self._ae.start_server((self.host, 0), block=False, evt_handlers=self._handlers)
        self.port = self._server.server_address[1]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is None:
            return
        # As pacsradar.lab.pacs.ExposedPacs.stop: let open associations end first (an SCP that
        # ignores C-CANCEL is still sending when the scanner aborts), since pynetdicom's shutdown
        # aborting one leaks its socket; then wait for their threads. Bounded, not a fixed sleep.
        settle = time.monotonic() + 3.0
        while self._ae.active_associations and time.monotonic() < settle:
            time.sleep(0.05)
        self._server.shutdown()
        self._server = None
        deadline = time.monotonic() + 10.0
        for assoc in list(self._ae.active_associations):
            assoc.join(max(0.0, deadline - time.monotonic()))
        # pynetdicom leaves the accepted socket of an association aborted while its C-FIND
        # handler is still yielding (our ignore_cancel peer) unclosed: collect it here, in the
        # peer's own teardown, so its ResourceWarning is the lab's and not a later test's.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
