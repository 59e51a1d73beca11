"""UPS-RS /workitems (PS3.18 §11.9) on a small real aiohttp DICOMweb server (issue 24)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lab.worklist import make_worklist
from pacsradar.models import Severity
from pacsradar.report.exposure import exposure_of
from web.helpers import attempt, finding, ids, web_scan
from web.servers import run_app


def _workitems(open_: bool) -> web.Application:
    """/dicom-web/workitems with 6 workitems of 5 synthetic patients, paged by limit/offset;
    401 unless ``open_``. /dicom-web/studies answers an empty search (no archive)."""
    scheduled = make_worklist()
    items: list[dict[str, Any]] = []
    for ds in scheduled.items:
        step = ds.ScheduledProcedureStepSequence[0]
        items.append(
            {
                "00100010": {"vr": "PN", "Value": [{"Alphabetic": str(ds.PatientName)}]},
                "00100020": {"vr": "LO", "Value": [ds.PatientID]},
                "00100021": {"vr": "LO", "Value": [ds.IssuerOfPatientID]},
                "00100030": {"vr": "DA", "Value": [ds.PatientBirthDate]},
                "00741000": {"vr": "CS", "Value": ["SCHEDULED"]},
                "00404005": {"vr": "DT", "Value": [step.ScheduledProcedureStepStartDate + "080000"]},
            }
        )
    async def workitems(request: web.Request) -> web.Response:
        if not open_:
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="pacs"'})
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
        return web.json_response(items[offset : offset + limit], content_type="application/dicom+json")

    async def studies(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/dicom-web/workitems", workitems)
    app.router.add_get("/dicom-web/studies", studies)
    return app


async def test_open_ups_rs_is_counted_exactly() -> None:
    # Given a DICOMweb server whose /workitems answers anyone
    app = _workitems(open_=True)
    async with run_app(app) as port:
        # When it is scanned with a bound of 4 records
        bounded = await web_scan(port, max_records=4)
        result = await web_scan(port)
    # Then WEB-UPS-PHI reports 5 patients in 6 workitems, keyed hashes labelled as scheduled
    f = finding(result, "WEB-UPS-PHI")
    assert f.severity is Severity.CRITICAL
    assert (f.evidence["patients"], f.evidence["scheduled_items"], f.evidence["model"]) == (5, 6, "UPS-RS")
    assert f.holdings is not None and f.holdings.source == "worklist"
    assert "ProcedureStepState" not in f.evidence["phi_attributes"]  # type: ignore[operator]
    assert "5 patients scheduled in worklists" in exposure_of(result.findings).sentence
    # And the bounded scan stopped at 4 and said so
    b = finding(bounded, "WEB-UPS-PHI")
    assert b.evidence["truncated"] is True and b.evidence["scheduled_items"] == 4


async def test_ups_rs_behind_auth_is_not_a_finding() -> None:
    # Given /workitems that asks for a token, When scanned, Then no WEB-UPS-PHI, status auth
    async with run_app(_workitems(open_=False)) as port:
        result = await web_scan(port)
    assert "WEB-UPS-PHI" not in ids(result)
    assert attempt(result, "web.dicomweb.ups")["status"] == "auth"
