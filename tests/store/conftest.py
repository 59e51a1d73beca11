"""Store fixtures: every store test runs on SQLite and on a real, throwaway PostgreSQL.

The PostgreSQL cluster is Debian's ``postgresql`` package (scripts/apt-packages.txt): ``initdb``
into a temporary directory, ``pg_ctl`` on 127.0.0.1 and a free port, no Unix socket outside
that directory, one fresh database per test. Nothing listens beyond loopback (HACKING.md 4).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lab.ports import PeerStartError, start_on_free_port
from pacsradar.store import Store

_db_numbers = count(1)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    which = shutil.which(name)
    if which:
        return which
    pytest.skip(f"PostgreSQL's {name} is missing: Debian's postgresql (scripts/apt-packages.txt)")


class PgCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pacsradar-pg-"))
        self.data = self.root / "data"
        self.port = 0  # chosen by start(): lab.ports.start_on_free_port
        self.user: str | None = None
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            "pacsradar",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        # A port taken before PostgreSQL bound it fails `pg_ctl -w start`: retried on another.
        start_on_free_port(self._start_on)

    def _start_on(self, ports: list[int]) -> None:
        self.port = ports[0]
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root}"
            " -c fsync=off -c full_page_writes=off"
        )
        try:
            self._pg_ctl_start(opts)
        except subprocess.CalledProcessError as exc:
            log = self.root / "log"
            if log.exists() and "could not bind" in log.read_text(errors="replace"):
                log.unlink()
                raise PeerStartError(f"port {self.port} was taken") from exc
            raise

    def _pg_ctl_start(self, opts: str) -> None:
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "log"),
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://pacsradar@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(_db_numbers)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=pacsradar dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        log = cluster.root / "log"
        detail = log.read_text(errors="replace") if log.exists() else exc.stderr
        cluster.stop()
        pytest.fail(f"could not start PostgreSQL: {detail!r}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.peers)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pacsradar.db'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as s:
        yield s
