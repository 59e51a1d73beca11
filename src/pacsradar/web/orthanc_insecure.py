"""WEB-ORTHANC-INSECURE: Orthanc itself reports ``IsHttpServerSecure: false`` in /system.

Orthanc sets it when remote access is allowed without authentication, or when it had to
create the default orthanc:orthanc user (main.cpp, Orthanc 1.5.8+; verified on 1.10.1, see
shared/reference/orthanc_security_keys.csv rows AuthenticationEnabled and RegisteredUsers).
Read anonymously when /system is open, else with the login the credentials check found.
"""

from __future__ import annotations

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.errors import ProtocolError
from pacsradar.models import Evidence, Severity
from pacsradar.web.context import WebContext
from pacsradar.web.fingerprint import learn_version
from pacsradar.web.refs import AUTH, CWE_306, ORTHANC_SECURITY

ORTHANC_INSECURE = CheckSpec(
    id="WEB-ORTHANC-INSECURE",
    title="Orthanc reports its own HTTP server as insecure",
    severity=Severity.HIGH,
    category="configuration",
    description=(
        "Orthanc's /system says IsHttpServerSecure is false: remote access is allowed without"
        " authentication, or authentication relies on the default user Orthanc created."
    ),
    remediation="Follow the Orthanc security guide before exposing the server.",
    product_remediation={
        "Orthanc": (
            "Orthanc: AuthenticationEnabled true, RegisteredUsers with strong passwords,"
            " RemoteAccessAllowed only if needed, SslEnabled true."
        ),
    },
    references=(*AUTH, CWE_306, ORTHANC_SECURITY),
    cwe="CWE-306",
)

SPECS: tuple[CheckSpec, ...] = (ORTHANC_INSECURE,)


async def _run(ctx: WebContext) -> CheckOutcome:
    if not ctx.is_product("Orthanc"):
        return skipped("not Orthanc")
    reply = await ctx.get("/system")
    via = "anonymous"
    if reply.needs_auth and ctx.credential is not None:
        reply = await ctx.get("/system", auth=ctx.credential, truncate_ok=False)
        via = "login"
    if reply.needs_auth:
        return skipped("/system requires credentials we do not have")
    try:
        data = reply.json()
    except ProtocolError:
        return skipped("/system did not return JSON")
    if isinstance(data, dict):
        learn_version(ctx, data.get("Version"))
    secure = data.get("IsHttpServerSecure") if isinstance(data, dict) else None
    details: Evidence = {"read_via": via, "is_http_server_secure": secure}
    if secure is not False:
        return CheckOutcome(details=details)
    finding = ORTHANC_INSECURE.finding(
        ctx.endpoint,
        summary=f"/system reports IsHttpServerSecure: false (read {via})",
        evidence=details,
        product=ctx.product_label,
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[WebContext] = Check(name="web.orthanc_insecure", specs=SPECS, run=_run)

__all__ = ["CHECK", "ORTHANC_INSECURE", "SPECS"]
