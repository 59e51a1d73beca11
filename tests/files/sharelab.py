"""Real share servers for the file-audit tests: vsftpd, Samba and nginx, loopback only.

The fixtures are re-exported by conftest.py.

Each is started in the foreground from a generated config in its own temporary directory, on a
port of a 127.x address (lab.ports.start_on_free_port: launched again on another when taken),
and stopped at teardown. Samba binds 127.0.0.1 only: its ``interfaces`` option accepts
addresses configured on an interface, and lo carries 127.0.0.1/8;
the other servers take 127.0.0.2 and 127.0.0.3. Roots live under /tmp with mode 0755 because the
servers read files as unprivileged users (ftp, nobody) that cannot enter pytest's 0700 tmp dirs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from filesynth import Corpus, make_template, study_values, write_corpus

from lab.ports import PeerStartError, start_on_free_port, wait_for_port

CANARY = "ZQXCANARY"  # appears in synthetic names, IDs and file names; must never be output


def serve(
    host: str, count: int, launch: Callable[[list[int]], subprocess.Popen[bytes]], log: Path
) -> tuple[subprocess.Popen[bytes], list[int]]:
    """``launch(ports)`` until its server listens on ``ports[0]``: a server told a port that
    was taken meanwhile exits (address in use) and is launched again on fresh candidates."""

    def start(ports: list[int]) -> tuple[subprocess.Popen[bytes], list[int]]:
        proc = launch(ports)
        try:
            wait_for_port(ports[0], host=host, proc=proc, timeout=20, what="share server")
        except PeerStartError as exc:
            stop(proc)
            raise PeerStartError(f"{exc}: {log.read_text(errors='replace')[-2000:]}") from exc
        except BaseException:
            stop(proc)
            raise
        return proc, ports

    return start_on_free_port(start, count=count, host=host, attempts=4)


def helpers_of(conf: Path) -> list[int]:
    """PIDs of processes whose command line names our config (smbd's detached rpcd helpers)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if str(conf).encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
    return found


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass(frozen=True)
class ShareTree:
    """A DICOM directory and a directory without DICOM, and what was written there."""

    root: Path
    dicom: Corpus
    text_files: int
    #: The study written twice into exports/, as a ZIP and as a tar.gz.
    exports: Corpus


def populate(root: Path) -> ShareTree:
    """dicom/: 2 patients x 2 studies x 3 instances (+1 text file, nested dirs); docs/: text only;
    exports/: 1 patient x 2 studies x 2 instances, as a ZIP and as a tar.gz."""
    template = make_template("CT")
    names = [f"{CANARY}^ALICE", f"{CANARY}^BOB"]
    ids = [f"{CANARY}01", f"{CANARY}02"]
    corpus = write_corpus(
        root / "dicom",
        template,
        study_values(2, 2, 3, names=names, ids=ids),
        name="{PatientName}_{n:03d}.dcm",
        per_dir=5,
    )
    (root / "dicom" / "README.txt").write_text("not an image\n")
    (root / "docs").mkdir()
    (root / "docs" / f"{CANARY}_notes.txt").write_text("hello\n" * 100)
    (root / "docs" / "sub").mkdir()
    (root / "docs" / "sub" / "more.txt").write_text("x" * 300)
    # exports/: the same kind of study as a ZIP and as a tar.gz (member names carry the canary)
    exports = write_corpus(
        root.parent / "staging",
        template,
        # Study UIDs of their own (study_values numbers studies per patient index).
        (
            {**v, "StudyInstanceUID": v["StudyInstanceUID"] + ".9"}
            for v in study_values(1, 2, 2, names=[f"{CANARY}^CAROL"], ids=[f"{CANARY}03"], first_year=1999)
        ),
        name="{PatientName}_{n:03d}.dcm",
    )
    (root / "exports").mkdir()
    with zipfile.ZipFile(root / "exports" / f"{CANARY}_study.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for path in exports.paths:
            zf.write(path, f"DICOM/{path.name}")
    with tarfile.open(root / "exports" / f"{CANARY}_study.tar.gz", "w:gz") as tf:
        for path in exports.paths:
            tf.add(path, f"study/{path.name}")
    shutil.rmtree(root.parent / "staging")
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)  # noqa: S103 - servers read as ftp/nobody
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return ShareTree(root=root, dicom=corpus, text_files=1, exports=exports)


@pytest.fixture(scope="session")
def share_tree() -> Iterator[ShareTree]:
    root = Path(tempfile.mkdtemp(prefix="pacsradar-share-", dir="/tmp"))
    os.chmod(root, 0o755)  # noqa: S103 - servers read as ftp/nobody
    try:
        yield populate(root / "data")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Server:
    host: str
    port: int


def _need(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if path is None:
        pytest.skip(f"{binary} not installed (apt-get install {binary}; see scripts/apt-packages.txt)")
    return path


@pytest.fixture(scope="session")
def vsftpd(share_tree: ShareTree) -> Iterator[Server]:
    binary = _need("vsftpd")
    host = "127.0.0.2"
    work = Path(tempfile.mkdtemp(prefix="pacsradar-vsftpd-"))
    empty = work / "empty"
    empty.mkdir()
    os.chmod(empty, 0o555)  # noqa: S103 - vsftpd's secure_chroot_dir
    conf = work / "vsftpd.conf"
    log = work / "out.log"

    def launch(ports: list[int]) -> subprocess.Popen[bytes]:
        port, pasv = ports
        conf.write_text(
            "\n".join(
                [
                    "listen=YES",
                    "listen_ipv6=NO",
                    "background=NO",
                    f"listen_address={host}",
                    f"listen_port={port}",
                    "anonymous_enable=YES",
                    "no_anon_password=YES",
                    f"anon_root={share_tree.root}",
                    "local_enable=NO",
                    "write_enable=NO",
                    "anon_world_readable_only=YES",
                    "pasv_enable=YES",
                    f"pasv_address={host}",
                    f"pasv_min_port={pasv}",
                    f"pasv_max_port={pasv}",
                    "port_enable=NO",
                    "seccomp_sandbox=NO",
                    "isolate_network=NO",
                    "isolate=NO",
                    f"secure_chroot_dir={empty}",
                    "ftp_username=ftp",
                    "xferlog_enable=NO",
                    "dirmessage_enable=NO",
                    "ftpd_banner=vsFTPd test",
                    "",
                ]
            )
        )
        with log.open("wb") as out:
            proc = subprocess.Popen([binary, str(conf)], stdout=out, stderr=subprocess.STDOUT)
        return proc

    proc, (port, _pasv) = serve(host, 2, launch, log)
    try:
        yield Server(host, port)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def smbd(share_tree: ShareTree) -> Iterator[Server]:
    binary = _need("smbd")
    host = "127.0.0.1"
    work = Path(tempfile.mkdtemp(prefix="pacsradar-smbd-"))
    for sub in ("state", "private", "lock", "cache", "run", "log"):
        (work / sub).mkdir()
    conf = work / "smb.conf"
    log = work / "out.log"

    def launch(ports: list[int]) -> subprocess.Popen[bytes]:
        (port,) = ports
        conf.write_text(
            f"""[global]
  workgroup = WORKGROUP
  server role = standalone server
  interfaces = 127.0.0.1/8
  bind interfaces only = yes
  smb ports = {port}
  disable netbios = yes
  map to guest = Bad User
  guest account = nobody
  restrict anonymous = 0
  server min protocol = SMB2
  state directory = {work}/state
  private dir = {work}/private
  lock directory = {work}/lock
  cache directory = {work}/cache
  pid directory = {work}/run
  ncalrpc dir = {work}/run/ncalrpc
  log file = {work}/log/log.%m
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
[dicom]
  path = {share_tree.root}/dicom
  guest ok = yes
  read only = yes
[docs]
  path = {share_tree.root}/docs
  guest ok = yes
  read only = yes
"""
        )
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [binary, "--foreground", "--no-process-group", "--debug-stdout", "-s", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                # smbd signals its whole process group on shutdown: give it its own.
                start_new_session=True,
            )
        return proc

    proc, (port,) = serve(host, 1, launch, log)
    try:
        yield Server(host, port)
    finally:
        stop(proc)
        # smbd starts samba-dcerpcd and rpcd_* on demand (srvsvc); they detach with setsid, so
        # they are ended by PID, found through the config path that only they carry.
        for pid in helpers_of(conf):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def nginx(share_tree: ShareTree) -> Iterator[Server]:
    binary = _need("nginx")
    host = "127.0.0.3"
    work = Path(tempfile.mkdtemp(prefix="pacsradar-nginx-"))
    conf = work / "nginx.conf"
    log = work / "out.log"

    def launch(ports: list[int]) -> subprocess.Popen[bytes]:
        (port,) = ports
        conf.write_text(
            f"""daemon off;
user root;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  server {{
    listen {host}:{port};
    root {share_tree.root};
    autoindex on;
  }}
}}
"""
        )
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [binary, "-e", str(work / "startup.log"), "-p", str(work), "-c", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return proc

    proc, (port,) = serve(host, 1, launch, log)
    try:
        yield Server(host, port)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
