"""What the estate lab tests share: the peers they need, an open Orthanc, a second loopback
host and the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lab.dcmtk import DCMQRSCP, dcmtk_available
from lab.orthanc import dicomweb_plugin_available, orthanc_available

#: ``pytestmark`` of a module that starts Orthanc (DICOM + DICOMweb) and dcmqrscp
NEEDS_PEERS = pytest.mark.skipif(
    not (orthanc_available() and dicomweb_plugin_available() and dcmtk_available(DCMQRSCP)),
    reason="Debian orthanc, orthanc-dicomweb and dcmtk are needed",
)

#: The estate's second host (Orthanc and dcmqrscp bind every address, so they answer here too)
OTHER = "127.0.0.3"
#: Orthanc that lets anyone query it over DICOM and HTTP (the exposure under test)
OPEN_ORTHANC = {
    "RemoteAccessAllowed": True,
    "AuthenticationEnabled": False,
    "DicomAlwaysAllowFind": True,
    "DicomCheckCalledAet": False,
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m pacsradar ARGS`` on a wide terminal, output captured as text."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "pacsradar", *args], capture_output=True, text=True, timeout=300, env=env
    )
