"""Fixtures for the web tests: real Orthanc instances from tests/lab, synthetic canary data,
and a helper that runs the engine with the web auditor. All traffic stays on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from lab.orthanc import (
    Orthanc,
    dicomweb_plugin_available,
    orthanc_auth_no_users,
    orthanc_available,
    orthanc_open_web,
    start_orthanc,
)
from pacsradar.config import Limits, ScanOptions
from pacsradar.engine import Engine
from pacsradar.lab.synthetic import LabSummary, make_studies, summarise
from pacsradar.models import Endpoint, Finding, ScanReport, TargetResult
from pacsradar.web.auditor import WebAuditor

CANARY = "CANARYZQX"
FAST = Limits(connect_timeout=2.0, read_timeout=2.0, target_deadline=40.0)

needs_orthanc = pytest.mark.skipif(
    not (orthanc_available() and dicomweb_plugin_available()),
    reason="Debian orthanc and orthanc-dicomweb are not installed",
)


def web_options(*ports: int, limits: Limits = FAST, **kw: object) -> ScanOptions:
    return ScanOptions(
        limits=limits,
        only=frozenset({"web"}),
        dicom_ports=(),
        web_ports=tuple(ports),
        **kw,  # type: ignore[arg-type]
    )


async def web_scan(port: int, *, host: str = "127.0.0.1", **kw: object) -> TargetResult:
    """Run the engine with only the web auditor against one endpoint; return its result."""
    options = web_options(port, **kw)
    report = await Engine(options, [WebAuditor()]).run([Endpoint(host=host, port=port)], total=1)
    return only_result(report)


def only_result(report: ScanReport) -> TargetResult:
    assert len(report.results) == 1, "the endpoint was not reachable"
    return report.results[0]


def finding(result: TargetResult, check_id: str) -> Finding:
    found = [f for f in result.findings if f.check_id == check_id]
    assert found, f"{check_id} not reported; got {sorted(ids(result))}"
    return found[0]


def ids(result: TargetResult) -> set[str]:
    return {f.check_id for f in result.findings}


def attempt(result: TargetResult, check: str) -> dict[str, object]:
    return dict(next(a for a in result.attempts if a.check == check).details)


@pytest.fixture(scope="session")
def canary_datasets() -> list[Dataset]:
    return make_studies(4, seed=7, canary=CANARY)


@pytest.fixture(scope="session")
def canary_summary(canary_datasets: list[Dataset]) -> LabSummary:
    return summarise(canary_datasets)


@pytest.fixture(scope="module")
def open_orthanc(
    tmp_path_factory: pytest.TempPathFactory, canary_datasets: list[Dataset]
) -> Iterator[Orthanc]:
    """RemoteAccessAllowed true, AuthenticationEnabled false, canary data loaded."""
    if not (orthanc_available() and dicomweb_plugin_available()):
        pytest.skip("Debian orthanc and orthanc-dicomweb are not installed")
    with start_orthanc(tmp_path_factory.mktemp("open"), orthanc_open_web()) as orthanc:
        orthanc.upload(canary_datasets)
        yield orthanc


@pytest.fixture(scope="module")
def auth_no_users_orthanc(
    tmp_path_factory: pytest.TempPathFactory, canary_datasets: list[Dataset]
) -> Iterator[Orthanc]:
    """Authentication on, RegisteredUsers empty: Orthanc registers orthanc:orthanc itself."""
    if not (orthanc_available() and dicomweb_plugin_available()):
        pytest.skip("Debian orthanc and orthanc-dicomweb are not installed")
    with start_orthanc(tmp_path_factory.mktemp("authnousers"), orthanc_auth_no_users()) as o:
        o.upload(canary_datasets, auth=("orthanc", "orthanc"))
        yield o


def workdir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    return tmp_path_factory.mktemp(name)
