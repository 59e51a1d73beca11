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
from pacsradar.lab.synthetic import LabSummary, make_studies, summarise
from web.helpers import CANARY


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
