"""A web server that answers ``/`` but leaves other paths unanswered is tested, not 'could not
test' (issue 22: PixelMed's web server drops unknown paths). Real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from pacsradar.config import Limits
from pacsradar.models import AttemptStatus
from pacsradar.outcome import untested_reason
from web.helpers import web_scan
from web.servers import raw_server

QUICK = Limits(connect_timeout=1.0, read_timeout=1.0, target_deadline=40.0)
PAGE = b"<html><head><title>archive</title></head><body><p>hello</p></body></html>"


def _server(drop: str):  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET / HTTP/"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                    + str(len(PAGE)).encode() + b"\r\n\r\n" + PAGE
                )  # fmt: skip
                await writer.drain()
                continue
            if drop == "close":
                return  # closed without a response (PixelMed, most paths)
            await reader.read()  # silent until the client gives up (its read timeout)
            return

    return handler


@pytest.mark.parametrize("drop", ["close", "silence"])
async def test_a_server_that_answers_root_only_is_never_could_not_test(drop: str) -> None:
    # Given a web server that answers / and leaves every other path without an HTTP answer
    async with raw_server(_server(drop)) as (port, _):
        # When the web auditor scans it
        result = await web_scan(port, limits=QUICK)
    # Then the endpoint counts as tested: no error attempt, so not 'could not test'
    assert result.reachable and result.service == "http"
    assert untested_reason(result) is None
    assert all(a.status is not AttemptStatus.ERROR for a in result.attempts)
    # And the checks that hit an unanswered path say so, as skipped attempts
    skipped = [a for a in result.attempts if a.reason and "does not serve that path" in a.reason]
    assert skipped and all(a.status is AttemptStatus.SKIPPED for a in skipped)
