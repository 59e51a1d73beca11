"""Behaviour of the web auditor against small synthetic peers (aiohttp, 127.0.0.1)."""

from __future__ import annotations

from aiohttp import web

from pacsradar.engine import AuditContext
from pacsradar.models import Endpoint, TargetResult
from pacsradar.net import Net
from pacsradar.web.auditor import WebAuditor
from web.helpers import finding, ids, web_options, web_scan
from web.servers import run_app

STUDY = {
    "0020000D": {"vr": "UI", "Value": ["1.2.826.0.1.3680043.8.498.1"]},
    "00100020": {"vr": "LO", "Value": ["PID-1"]},
    "00080020": {"vr": "DA", "Value": ["20190102"]},
    "00201208": {"vr": "IS", "Value": [3]},
}


def dicomweb_app(*, cors: bool = False, offsite_redirect: bool = False) -> web.Application:
    async def root(request: web.Request) -> web.StreamResponse:
        if offsite_redirect:
            raise web.HTTPFound("https://127.0.0.2:9/elsewhere")
        return web.Response(text="<html><title>Archive</title></html>", content_type="text/html")

    async def studies(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        rows = [STUDY] if offset == 0 else []
        headers = {"Access-Control-Allow-Origin": "*"} if cors else {}
        return web.json_response(rows, content_type="application/dicom+json", headers=headers)

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/dicomweb/studies", studies)
    return app


async def test_generic_dicomweb_service_is_identified_and_counted() -> None:
    # Given an unknown server with an open QIDO-RS at /dicomweb
    async with run_app(dicomweb_app()) as port:
        # When scanned
        result = await web_scan(port)
    # Then it is named a generic DICOMweb service and counted through QIDO-RS
    assert result.product == "DICOMweb (generic)"
    qido = finding(result, "DICOMWEB-UNAUTH-QIDO")
    assert (qido.evidence["studies"], qido.evidence["instances"]) == (1, 3)
    assert qido.evidence["patients"] == 1
    assert qido.evidence["study_year_min"] == 2019
    assert finding(result, "WEB-UNAUTH-PHI").evidence["source"] == "qido-rs"


async def test_cors_wildcard_on_phi_route_is_high() -> None:
    # Given an open QIDO-RS that answers any origin with '*'
    async with run_app(dicomweb_app(cors=True)) as port:
        result = await web_scan(port)
    # Then WEB-CORS-WILDCARD is reported for the QIDO route
    cors = finding(result, "WEB-CORS-WILDCARD")
    assert cors.evidence["wildcard"] is True
    assert cors.evidence["path"] == "qido-rs"


async def test_redirect_to_another_origin_is_not_followed() -> None:
    # Given a root that redirects to another host
    async with run_app(dicomweb_app(offsite_redirect=True)) as port:
        result = await web_scan(port)
    # Then the scan stays on the audited origin, and an https redirect counts for WEB-PLAINTEXT
    assert result.service == "http"
    assert "WEB-PLAINTEXT" not in ids(result)


async def test_web_traffic_goes_through_the_shared_net_limits() -> None:
    # Given the engine's connection factory
    options = web_options(0)
    net = Net(options.limits)
    async with run_app(dicomweb_app()) as port:
        # When the auditor runs with it
        result: TargetResult = await WebAuditor().audit(
            Endpoint(host="127.0.0.1", port=port), AuditContext(options=options, net=net)
        )
    # Then every HTTP connection was opened by Net (rate and per-host limits apply)
    assert result.reachable
    assert net.connections_opened >= 3


def test_wants_web_ports_http_services_and_not_dicom_ones() -> None:
    # Given the auditor and options with web port 8042 and extra port 9999
    auditor = WebAuditor()
    options = web_options(8042, extra_ports=(9999,))
    options = type(options)(**{**options.__dict__, "only": frozenset({"web", "dicom"})})
    http_seen = TargetResult(endpoint=Endpoint(host="h", port=4242), reachable=True, service="http")
    dicom_seen = TargetResult(endpoint=Endpoint(host="h", port=9999), reachable=True, service="dicom")
    # Then it wants web ports, extra ports, and DICOM ports that answered HTTP, but not DICOM
    assert auditor.wants(Endpoint(host="h", port=8042), [], options)
    assert auditor.wants(Endpoint(host="h", port=9999), [], options)
    assert auditor.wants(Endpoint(host="h", port=4242), [http_seen], options)
    assert not auditor.wants(Endpoint(host="h", port=9999), [dicom_seen], options)
    assert not auditor.wants(Endpoint(host="h", port=104), [], options)
    # And nothing with --only dicom
    dicom_only = type(options)(**{**options.__dict__, "only": frozenset({"dicom"})})
    assert not auditor.wants(Endpoint(host="h", port=8042), [], dicom_only)
