"""Shared fixtures: synthetic data and real peers, all on 127.0.0.0/8 (HACKING.md rule 4).

Peers come from Debian packages (orthanc, orthanc-dicomweb, dcmtk); a test is skipped only
when the binary itself is absent, never because a peer misbehaves.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from lab import CANARY, LAB_SEED
from lab.dcmtk import (
    DCMQRIDX,
    DCMQRSCP,
    STORESCP,
    DcmtkPeer,
    dcmtk_available,
    start_dcmqrscp,
    start_storescp_tls,
)
from lab.hostile import HOSTILE_KINDS, ThreadedServer, run_in_thread
from lab.orthanc import ORTHANC_BIN, Orthanc, orthanc_available, start_orthanc
from lab.ports import LOOPBACK, closed_port
from lab.tls import CertPair, make_self_signed
from pacsradar.lab.pacs import ExposedPacs, silence_pynetdicom
from pacsradar.lab.synthetic import LabSummary, make_studies, summarise

# -- markers (issue 23): `peers`, `netns` and `slow` are applied here, from what a test uses ----------
#
# A test is `peers` when its function, one of its fixtures, or a helper of its module they call
# names one of PEER_NAMES (the starters of real peer software from Debian/npm, or its binary);
# `netns` likewise with NETNS_NAMES. `slow` is SLOW_TESTS (tests/slow_tests.txt: measured, see
# HACKING.md "Tests"). The fast subset is `pytest -m "not peers and not netns and
# not slow"`.

PEER_NAMES = frozenset({
    # tests/lab: Orthanc, DCMTK, dcmjs-dimse (npm), pynetdicom's qrscp application
    "start_orthanc", "orthanc_factory", "start_dcmqrscp", "dcmqrscp_lab", "start_storescp_tls",
    "storescp_tls_factory", "start_dcmjs_scp", "start_qrscp", "TlsFront",
    # binaries named by test modules: nmap, CTN, chromium, vsftpd/smbd/nginx, PostgreSQL
    "NMAP", "SIMPLE_STORAGE", "CHROMIUM", "_need", "pg_cluster", "ctn_storage",
})  # fmt: skip
NETNS_NAMES = frozenset({"SparseNet", "netns_skip_reason"})

#: Test functions (names, not paths: they survive a move) measured slow: tests/slow_tests.txt.
SLOW_TESTS = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "slow_tests.txt").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)


def _names_used(code: Any, module: dict[str, Any], seen: set[int], depth: int = 0) -> set[str]:
    """Global names ``code`` refers to, with those of nested code and of same-module helpers."""
    if id(code) in seen or depth > 4:
        return set()
    seen.add(id(code))
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _names_used(const, module, seen, depth)
    for name in list(names):
        helper = module.get(name)
        if callable(helper) and getattr(helper, "__module__", None) == module.get("__name__"):
            inner = getattr(helper, "__code__", None)
            if inner is not None:
                names |= _names_used(inner, module, seen, depth + 1)
    return names


def _uses(item: pytest.Item) -> set[str]:
    function = getattr(item, "function", None)
    if function is None:
        return set()
    seen: set[int] = set()
    names = _names_used(function.__code__, function.__globals__, seen)
    info = getattr(item, "_fixtureinfo", None)
    for fixture_name, defs in (info.name2fixturedefs.items() if info is not None else ()):
        names.add(fixture_name)
        for fixturedef in defs:
            func = getattr(fixturedef.func, "__wrapped__", fixturedef.func)
            if hasattr(func, "__code__"):
                names |= _names_used(func.__code__, func.__globals__, seen)
    return names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = _uses(item)
        kinds = {"peers": bool(used & PEER_NAMES), "netns": bool(used & NETNS_NAMES)}
        for marker, applies in kinds.items():
            if applies and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
        if getattr(item, "originalname", item.name) in SLOW_TESTS and item.get_closest_marker("slow") is None:
            item.add_marker("slow")


@pytest.fixture(autouse=True, scope="session")
def _quiet_pynetdicom() -> None:
    # pynetdicom logs whole identifiers at INFO; tests must not capture PHI-like data either.
    silence_pynetdicom()


#: What asyncio logs when a task or future was left behind: each one is a bug of ours (issue 11).
ASYNCIO_NOISE = (
    "Task exception was never retrieved",
    "Future exception was never retrieved",
    "Task was destroyed but it is pending",
    "Exception in callback",
    "Unhandled error in exception handler",
    "Fatal error on SSL transport",
    "Fatal error on transport",
    "Error on reading from the event loop self pipe",
)


class _AsyncioNoise(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(message.startswith(noise) for noise in ASYNCIO_NOISE):
            self.seen.append(message.splitlines()[0][:300])


@pytest.fixture(autouse=True)
def _no_asyncio_noise() -> Iterator[None]:
    """Fail a test when the asyncio logger reports an unretrieved task exception, a pending
    task destroyed, or an exception in a callback: every task must be awaited or cancelled."""
    handler = _AsyncioNoise()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
        # Abandoned tasks and futures report when they are collected: collect them now.
        gc.collect()
    finally:
        logger.removeHandler(handler)
    if handler.seen:
        pytest.fail("asyncio reported:\n" + "\n".join(dict.fromkeys(handler.seen)), pytrace=False)


@pytest.fixture
def closed_ports() -> Iterator[Callable[..., int]]:
    """``closed_ports(host="127.0.0.1") -> port``: a port that refuses connections until the
    test ends (bound, never listening, so nothing else can take it meanwhile)."""
    with contextlib.ExitStack() as stack:
        yield lambda host=LOOPBACK: stack.enter_context(closed_port(host))


@pytest.fixture(scope="session")
def lab_datasets() -> list[Dataset]:
    """Seeded synthetic studies with canary PHI. Shared by the session: do not mutate."""
    return make_studies(6, seed=LAB_SEED, canary=CANARY)


@pytest.fixture(scope="session")
def lab_summary(lab_datasets: list[Dataset]) -> LabSummary:
    return summarise(lab_datasets)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    """Self-signed RSA-2048 certificate for 127.0.0.1 (key, cert, and key+cert PEM)."""
    return make_self_signed(tmp_path_factory.mktemp("tls"), "lab")


@pytest.fixture
def exposed_pacs(lab_datasets: list[Dataset]) -> Iterator[ExposedPacs]:
    """The deliberately exposed pynetdicom Q/R SCP, serving ``lab_datasets`` on 127.0.0.1."""
    with ExposedPacs(lab_datasets, host=LOOPBACK) as pacs:
        yield pacs


@pytest.fixture
def orthanc_factory(tmp_path: Path) -> Iterator[Callable[..., Orthanc]]:
    """``start(config=None, *, datasets=(), name=None, **kwargs) -> Orthanc``.

    Each call starts a fresh Orthanc (own free ports, own directory) and uploads ``datasets``
    (with the configured user's credentials when the config registers one). All instances
    are stopped at teardown.
    """
    if not orthanc_available():
        pytest.skip(f"{ORTHANC_BIN} not installed (Debian package 'orthanc')")
    started: list[Orthanc] = []

    def start(
        config: dict[str, Any] | None = None,
        *,
        datasets: list[Dataset] | tuple[Dataset, ...] = (),
        name: str | None = None,
        **kwargs: Any,
    ) -> Orthanc:
        workdir = tmp_path / (name or f"orthanc{len(started)}")
        orthanc = start_orthanc(workdir, config, **kwargs)
        started.append(orthanc)
        if datasets:
            users = dict(orthanc.config.get("RegisteredUsers") or {})
            auth = next(iter(users.items())) if users else None
            if orthanc.config.get("AuthenticationEnabled") and auth is None:
                auth = ("orthanc", "orthanc")  # Orthanc's own fallback user, see lab.orthanc
            orthanc.upload(datasets, auth=auth)
        return orthanc

    yield start
    for orthanc in reversed(started):
        orthanc.stop()


@pytest.fixture
def dcmqrscp_lab(tmp_path: Path, lab_datasets: list[Dataset]) -> Iterator[DcmtkPeer]:
    """dcmqrscp: called AE ``HOSPQR`` holding ``lab_datasets``, only peer AE ``ALLOWED``."""
    if not dcmtk_available(DCMQRSCP, DCMQRIDX):
        pytest.skip(f"{DCMQRSCP} not installed (Debian package 'dcmtk')")
    with start_dcmqrscp(tmp_path / "dcmqrscp", lab_datasets) as peer:
        yield peer


@pytest.fixture
def storescp_tls_factory(tmp_path: Path, tls_cert: CertPair) -> Iterator[Callable[..., DcmtkPeer]]:
    """``start(profile="bcp195-nd", **kwargs) -> DcmtkPeer`` (storescp +tls), stopped at end."""
    if not dcmtk_available(STORESCP):
        pytest.skip(f"{STORESCP} not installed (Debian package 'dcmtk')")
    started: list[DcmtkPeer] = []

    def start(profile: str = "bcp195-nd", **kwargs: Any) -> DcmtkPeer:
        kwargs.setdefault("cert", tls_cert)
        workdir = tmp_path / f"storescp{len(started)}"
        workdir.mkdir()
        peer = start_storescp_tls(workdir, profile=profile, **kwargs)
        started.append(peer)
        return peer

    yield start
    for peer in reversed(started):
        peer.stop()


@pytest.fixture
def storescp_tls(storescp_tls_factory: Callable[..., DcmtkPeer]) -> DcmtkPeer:
    """storescp with TLS, default non-downgrading BCP 195 profile, client cert not required."""
    return storescp_tls_factory()


@pytest.fixture
def hostile_factory() -> Iterator[Callable[..., ThreadedServer]]:
    """``start(kind, host="127.0.0.1", **kwargs) -> ThreadedServer`` on a background loop;
    ``kind`` is a key of :data:`lab.hostile.HOSTILE_KINDS`. Stopped at teardown."""
    started: list[ThreadedServer] = []

    def start(kind: str, host: str = LOOPBACK, **kwargs: Any) -> ThreadedServer:
        server = run_in_thread(HOSTILE_KINDS[kind](host=host, **kwargs))
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
