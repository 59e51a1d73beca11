"""Hostile web peers: each ends as an error attempt inside the deadline, with bounded memory."""

from __future__ import annotations

import tracemalloc

import pytest

from pacsradar.config import Limits
from pacsradar.models import AttemptStatus
from web.helpers import web_scan
from web.servers import HOSTILE, bomb_body, raw_server

#: Small bounds so the test is quick; the deadline is far above what the bounds need.
TIGHT = Limits(connect_timeout=1.0, read_timeout=1.0, target_deadline=30.0, max_body_bytes=1024 * 1024)
#: A generous ceiling: the gzip bomb alone would need 256 MiB decoded, the headers 1 MiB.
MEMORY_CEILING = 48 * 1024 * 1024

REASONS = {
    "redirect-loop": "redirects",
    "2gb-content-length": "in time",
    "gzip-bomb": "bound",
    "megabyte-headers": "header size bound",
    "non-http-banner": "not an HTTP",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_hostile_peer_gives_an_error_attempt_not_a_crash(kind: str) -> None:
    if kind == "gzip-bomb":
        bomb_body()  # build the bomb outside the measured section
    # Given a hostile web peer on 127.0.0.1
    async with raw_server(HOSTILE[kind]) as (port, connections):
        # When the web auditor scans it, with memory traced
        tracemalloc.start()
        try:
            result = await web_scan(port, limits=TIGHT)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # Then the scanner really talked to it
    assert connections[0] >= 1
    # And the outcome is an error attempt with our own explanation, not an exception
    assert result.reachable is True
    errors = [a for a in result.attempts if a.status is AttemptStatus.ERROR]
    assert [a.check for a in errors] == ["web.discovery"], result.attempts
    assert REASONS[kind] in (errors[0].reason or "")
    # And it finished inside the web audit's own budget (the engine deadline never fired)
    assert not any(a.check == "engine.deadline" for a in result.attempts)
    # And memory stayed bounded
    assert peak < MEMORY_CEILING
    assert result.findings == ()


async def test_closed_port_is_unreachable_without_attempts() -> None:
    # Given a port nobody listens on
    async with raw_server(HOSTILE["non-http-banner"]) as (port, _):
        pass
    # When it is scanned
    from pacsradar.config import ScanOptions  # noqa: F401 - documents the default options path
    from pacsradar.engine import Engine
    from pacsradar.models import Endpoint
    from pacsradar.web.auditor import WebAuditor
    from web.helpers import web_options

    report = await Engine(web_options(port, limits=TIGHT), [WebAuditor()], keep_closed=True).run(
        [Endpoint(host="127.0.0.1", port=port)], total=1
    )
    # Then it is reported unreachable, with no error attempt to chase
    (result,) = report.results
    assert result.reachable is False
    assert result.attempts == ()
