"""WEB-METRICS-OPEN: monitoring metrics readable without authentication.

Orthanc's ``/tools/metrics-prometheus`` (MetricsEnabled, default true since 1.5.4) includes the
patient, study and instance counts; other servers expose ``/metrics``. Counted, not stored.
"""

from __future__ import annotations

import re

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.models import Evidence, Severity
from pacsradar.web.context import WebContext
from pacsradar.web.data import fingerprint_table
from pacsradar.web.refs import ACCESS, CWE_200

#: Prometheus text exposition format: "name{labels} value [timestamp]"
_SAMPLE = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*(\{[^}\n]*\})?\s+[-+0-9.eEaINnf]+(\s+-?\d+)?\s*$")

METRICS_OPEN = CheckSpec(
    id="WEB-METRICS-OPEN",
    title="Monitoring metrics readable without authentication",
    severity=Severity.LOW,
    category="information-disclosure",
    description=(
        "A metrics endpoint answers anonymous requests. It reveals software internals and, for"
        " Orthanc, how many patients, studies and instances the archive holds."
    ),
    remediation="Restrict the metrics endpoint to the monitoring system's address.",
    product_remediation={"Orthanc": "Orthanc: set MetricsEnabled false if not scraped."},
    references=(*ACCESS, CWE_200),
    cwe="CWE-200",
)

SPECS: tuple[CheckSpec, ...] = (METRICS_OPEN,)


async def _run(ctx: WebContext) -> CheckOutcome:
    paths = fingerprint_table().paths_for(ctx.product).metrics
    if not paths:
        return skipped("no metrics endpoint known for this product")
    details: Evidence = {}
    for path in paths:
        reply = await ctx.client.request("GET", path, max_body=256 * 1024, truncate_ok=True)
        details["status_code"] = reply.status
        if reply.needs_auth or reply.status != 200:
            continue
        lines = reply.text().splitlines()
        samples = sum(1 for line in lines if _SAMPLE.match(line))
        if samples < 3:
            continue
        reveals_counts = any(line.startswith("orthanc_count_patients") for line in lines)
        evidence: Evidence = {"path": path, "samples": samples, "reveals_counts": reveals_counts}
        finding = METRICS_OPEN.finding(
            ctx.endpoint,
            summary=f"{samples} metric samples readable at {path} without authentication"
            + (" (including patient counts)" if reveals_counts else ""),
            evidence=evidence,
            product=ctx.product_label,
            severity=Severity.MEDIUM if reveals_counts else Severity.LOW,
        )
        return CheckOutcome(details={**details, **evidence}, findings=(finding,))
    return CheckOutcome(details=details)


CHECK: Check[WebContext] = Check(name="web.metrics", specs=SPECS, run=_run)

__all__ = ["CHECK", "METRICS_OPEN", "SPECS"]
