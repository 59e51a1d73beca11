"""Agreement with nmap's dicom-ping: 'Any AET is accepted' ⟺ DICOM-ANY-AE, on the same servers.

nmap runs with -n (no DNS) against 127.x addresses only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dicom.helpers import ids, result_for, scan
from lab.dcmtk import DCMQRSCP, dcmtk_available, start_dcmqrscp
from lab.orthanc import orthanc_available, orthanc_default, start_orthanc
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies

NMAP = shutil.which("nmap")


def nmap_any_aet(host: str, port: int, workdir: Path) -> bool | None:
    """True/False from dicom-ping's 'config:' line; None if nmap saw no DICOM there.

    dicom-ping only runs on ports nmap calls 'dicom'. A private --datadir whose nmap-services
    names our free port 'dicom' lets it run there without -sV (nmap still finds its scripts
    in the default data directory).
    """
    assert NMAP is not None
    datadir = workdir / f"nmap-{port}"
    datadir.mkdir()
    services = Path("/usr/share/nmap/nmap-services").read_text().splitlines()
    kept = [line for line in services if f"\t{port}/tcp" not in line]
    (datadir / "nmap-services").write_text("\n".join([*kept, f"dicom\t{port}/tcp\t0.5", ""]))
    out = subprocess.run(
        [
            NMAP,
            "-n",
            "-Pn",
            "-sT",
            "--datadir",
            str(datadir),
            "-p",
            str(port),
            "--script",
            "dicom-ping",
            host,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    match = re.search(r"config: (.+)", out)
    if match is None:
        return None
    return "Any AET is accepted" in match.group(1)


@pytest.mark.skipif(NMAP is None, reason="nmap not installed")
def test_pacsradar_and_nmap_agree_on_any_ae(tmp_path: Path) -> None:
    # Given servers that accept any AE (pynetdicom, Orthanc defaults) and ones that check it
    # (pynetdicom with a non-default called AE, dcmqrscp with an AE table)
    data = make_studies(1, seed=3)
    servers: list[tuple[str, int]] = []
    with (
        ExposedPacs(data, host="127.0.0.41") as open_pacs,
        ExposedPacs(data, host="127.0.0.42", ae_title="HOSPPACS", require_called_aet=True) as strict,
    ):
        servers += [("127.0.0.41", open_pacs.port), ("127.0.0.42", strict.port)]
        extra = []
        if orthanc_available():
            extra.append(start_orthanc(tmp_path / "orthanc", orthanc_default(), plugins=()))
        if dcmtk_available(DCMQRSCP):
            extra.append(start_dcmqrscp(tmp_path / "qr", data, called_aet="HOSPQR"))
        try:
            for peer in extra:
                servers.append(("127.0.0.1", getattr(peer, "dicom_port", None) or peer.port))  # type: ignore[attr-defined]
            # When both tools look at every server
            report = scan(servers)
            verdicts = {
                (host, port): (
                    "DICOM-ANY-AE" in ids(result_for(report, port)),
                    nmap_any_aet(host, port, tmp_path),
                )
                for host, port in servers
            }
        finally:
            for peer in extra:
                peer.stop()
    # Then they agree server by server, and both kinds of server were present
    assert all(ours == theirs for ours, theirs in verdicts.values()), verdicts
    assert {ours for ours, _ in verdicts.values()} == {True, False}
