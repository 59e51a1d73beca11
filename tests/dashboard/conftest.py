"""Dashboard fixtures: a populated store, the app served by uvicorn on 127.0.0.1, a token."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))

import pacsradar_samples as S
from dashlab import ARTIFACTS, TOKEN, Dashboard, second_scan

from pacsradar.dashboard import DashboardServer, create_app
from pacsradar.store import Store


@pytest.fixture
def populated_store(tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    db = tmp_path / "pacsradar.db"
    with Store(f"sqlite:///{db}") as store:
        store.save_report(S.lab_report("scan-a"))
        store.save_report(second_scan())
        yield store, db


@pytest.fixture
def dashboard(populated_store: tuple[Store, Path]) -> Iterator[Dashboard]:
    store, db = populated_store
    # Port 0: uvicorn binds a port of the kernel's choosing; the URL is read back from its socket.
    server = DashboardServer(create_app(store, token=TOKEN), port=0)
    with server:
        port = int(server.server.servers[0].sockets[0].getsockname()[1])
        yield Dashboard(url=f"http://127.0.0.1:{port}", store=store, db=db)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots land in test-artifacts/ (which ignores itself in git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    return ARTIFACTS
