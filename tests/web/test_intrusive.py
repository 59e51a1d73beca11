"""The web auditor honours the ``intrusive`` flag as the DICOM auditor does (127.0.0.1 only)."""

from __future__ import annotations

from aiohttp import web

from pacsradar.checks import Check, CheckOutcome
from pacsradar.engine import Engine
from pacsradar.models import Endpoint
from pacsradar.web.auditor import WebAuditor
from pacsradar.web.context import WebContext
from web.helpers import only_result, web_options
from web.servers import run_app


def _app() -> web.Application:
    async def root(request: web.Request) -> web.Response:
        return web.Response(text="<html><title>Portal</title></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", root)
    return app


async def _ran(ctx: WebContext) -> CheckOutcome:
    return CheckOutcome(details={"ran": True})


INTRUSIVE: Check[WebContext] = Check(name="web.test-intrusive", specs=(), run=_ran, intrusive=True)
SAFE: Check[WebContext] = Check(name="web.test-safe", specs=(), run=_ran)


async def test_intrusive_web_check_runs_only_when_asked() -> None:
    # Given a web service and an auditor with one safe and one intrusive check
    async with run_app(_app()) as port:
        endpoint = Endpoint(host="127.0.0.1", port=port)
        # When scanned by default, and then with --intrusive
        runs = {}
        for intrusive in (False, True):
            options = web_options(port, intrusive=intrusive)
            report = await Engine(options, [WebAuditor([SAFE, INTRUSIVE])]).run([endpoint], total=1)
            runs[intrusive] = {a.check for a in only_result(report).attempts}
    # Then the intrusive check is absent by default and present when opted in
    assert runs[False] == {"web.test-safe"}
    assert runs[True] == {"web.test-safe", "web.test-intrusive"}
