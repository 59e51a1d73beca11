"""WEB-BLANK-CREDENTIALS and WEB-DEFAULT-CREDENTIALS: logins that accept nothing or the default.

Never a brute force. Per host (all its ports together) at most ``max_attempts_per_host`` login
submissions from ``data/default_credentials.json``, a form baseline included; the first sign of
lockout or rate limiting (429, ``Retry-After``, "locked"/"too many" in the page) stops every
further attempt on that host. Mechanisms: HTTP Basic (RFC 7617) on a path that answered 401,
and HTML login forms (a generic heuristic, baselined with a random login that must fail).

Reported: which mechanism, the username from our own table and whether the password was blank.
Passwords are never reported; the working login stays in memory for authenticated follow-ups.
"""

from __future__ import annotations

import secrets
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.errors import ProtocolError, ScanError
from pacsradar.models import Evidence, Severity
from pacsradar.web.client import HttpReply
from pacsradar.web.context import WebContext
from pacsradar.web.data import CredentialTable, credential_table, fingerprint_table
from pacsradar.web.html import LoginForm, parse_page
from pacsradar.web.refs import AUTH, CWE_521, CWE_1392, ORTHANC_SECURITY

BLANK = CheckSpec(
    id="WEB-BLANK-CREDENTIALS",
    title="Web login accepts a blank username and password",
    severity=Severity.CRITICAL,
    category="authentication",
    description=(
        "The login of this PACS web service accepts an empty username and password, so the"
        " login protects nothing."
    ),
    remediation=(
        "Disable accounts without a password, require a password policy, and put the portal"
        " behind single sign-on or a VPN."
    ),
    product_remediation={
        "Horos": "Horos: in Preferences > Web Server, require a password for every web user.",
    },
    references=(*AUTH, CWE_521),
    cwe="CWE-521",
)
DEFAULT = CheckSpec(
    id="WEB-DEFAULT-CREDENTIALS",
    title="Web login accepts a vendor default password",
    severity=Severity.CRITICAL,
    category="authentication",
    description=(
        "The login of this PACS web service accepts a publicly documented default username and password."
    ),
    remediation="Change every default account's password or remove the account.",
    product_remediation={
        "Orthanc": (
            "Orthanc: declare RegisteredUsers with strong passwords (with AuthenticationEnabled"
            " and an empty RegisteredUsers Orthanc creates orthanc:orthanc itself)."
        ),
        "dcm4chee": "dcm4chee: change the Keycloak/JBoss admin and user passwords.",
        "Dicoogle": "Dicoogle: change the dicoogle user's password in the user management.",
        "XNAT": "XNAT: change the admin password at first login.",
    },
    references=(*AUTH, CWE_1392, ORTHANC_SECURITY),
    cwe="CWE-1392",
)

SPECS: tuple[CheckSpec, ...] = (BLANK, DEFAULT)

Mechanism = Literal["basic", "form"]


@dataclass(frozen=True)
class LoginSurface:
    mechanism: Mechanism
    path: str
    form: LoginForm | None = None


@dataclass(frozen=True)
class LoginTry:
    accepted: bool
    lockout: bool
    status: int


def _basic_surface(ctx: WebContext) -> LoginSurface | None:
    found: list[str] = []
    for path, reply in ctx.cached_replies():
        challenge = (reply.header("www-authenticate") or "").lower()
        if reply.status == 401 and challenge.startswith("basic"):
            found.append(path)
    if not found:
        return None
    # Prefer the product's own API path (Orthanc /system) over the UI root.
    preferred = [p for p in found if p != "/"]
    return LoginSurface("basic", (preferred or found)[0])


def _form_surface(ctx: WebContext) -> LoginSurface | None:
    root = ctx.cached("/")
    if root is None or root.status >= 400:
        return None
    form = parse_page(root.body).login_form
    if form is None:
        return None
    return LoginSurface("form", root.path or "/", form)


def _lockout(reply: HttpReply, table: CredentialTable) -> bool:
    if reply.status == 429 or reply.header("retry-after") is not None:
        return True
    text = reply.text(64 * 1024).lower()
    return any(marker in text for marker in table.lockout_markers)


def _form_accepted(reply: HttpReply, login_path: str, table: CredentialTable) -> bool:
    if reply.status >= 400:
        return False
    page = parse_page(reply.body)
    if page.has_password_input:
        return False
    text = reply.text(64 * 1024).lower()
    if any(marker in text for marker in table.failure_markers):
        return False
    return reply.cookies_set or reply.redirects > 0 or reply.path != login_path


async def _try_basic(ctx: WebContext, surface: LoginSurface, user: str, password: str) -> LoginTry:
    reply = await ctx.client.request(
        "GET", surface.path, auth=(user, password), max_body=64 * 1024, truncate_ok=True
    )
    table = credential_table()
    if _lockout(reply, table):
        return LoginTry(False, True, reply.status)
    accepted = reply.status not in (401, 403, 407) and reply.status < 500
    return LoginTry(accepted, False, reply.status)


async def _try_form(ctx: WebContext, surface: LoginSurface, user: str, password: str) -> LoginTry:
    form = surface.form
    if form is None:
        raise ProtocolError("form login without a form")
    table = credential_table()
    hidden = dict(form.hidden)
    if hidden:
        # CSRF tokens are often single-use: fetch the form afresh (not a login attempt).
        page = await ctx.client.request("GET", surface.path, max_body=256 * 1024, truncate_ok=True)
        fresh = parse_page(page.body).login_form
        if fresh is not None:
            hidden = dict(fresh.hidden)
    fields = dict(hidden)
    if form.user_field:
        fields[form.user_field] = user
    fields[form.password_field] = password
    action = urllib.parse.urljoin(surface.path, form.action or surface.path)
    ctx.client.clear_cookies()
    try:
        if form.method == "get":
            query = urllib.parse.urlencode(fields)
            reply = await ctx.client.request(
                "GET", f"{action.split('?')[0]}?{query}", max_body=256 * 1024, truncate_ok=True
            )
        else:
            reply = await ctx.client.request(
                "POST", action, data=fields, max_body=256 * 1024, truncate_ok=True
            )
    finally:
        ctx.client.clear_cookies()
    if _lockout(reply, table):
        return LoginTry(False, True, reply.status)
    return LoginTry(_form_accepted(reply, surface.path, table), False, reply.status)


async def _authenticated_counts(ctx: WebContext, user: str, password: str) -> Evidence:
    """What the accepted login opens, as counts (Orthanc /statistics); empty when unknown."""
    paths = fingerprint_table().paths_for(ctx.product)
    if not paths.statistics or not ctx.is_product("Orthanc"):
        return {}
    try:
        reply = await ctx.get(paths.statistics, auth=(user, password), truncate_ok=False)
        data = reply.json() if reply.status == 200 else None
    except (ScanError, ProtocolError):
        return {}
    if not isinstance(data, dict):
        return {}
    out: Evidence = {}
    for key, name in (("CountPatients", "patients"), ("CountStudies", "studies"),
                      ("CountInstances", "instances")):  # fmt: skip
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out[f"{name}_behind_login"] = value
    return out


async def _run(ctx: WebContext) -> CheckOutcome:
    table = credential_table()
    budget = ctx.login_budget
    if budget.locked_out:
        return skipped("this host showed lockout or rate limiting earlier; no more logins")
    surface = _basic_surface(ctx) or _form_surface(ctx)
    if surface is None:
        return skipped("no login prompt found (HTTP Basic challenge or login form)")
    attempt = _try_basic if surface.mechanism == "basic" else _try_form
    details: Evidence = {"mechanism": surface.mechanism, "attempts": 0, "lockout": False}
    spent = 0

    def spend() -> bool:
        nonlocal spent
        if budget.attempts >= table.max_attempts_per_host:
            details["budget_exhausted"] = True
            return False
        budget.attempts += 1
        spent += 1
        details["attempts"] = spent
        return True

    if surface.mechanism == "form":
        # Baseline: a random login must be refused, or the heuristic cannot tell success.
        if not spend():
            return CheckOutcome(details=details, reason="login attempt budget for this host used")
        base = await attempt(ctx, surface, "pr-" + secrets.token_hex(6), secrets.token_urlsafe(12))
        if base.lockout:
            budget.locked_out = True
            details["lockout"] = True
            return CheckOutcome(details=details, reason="lockout or rate limiting: stopped")
        if base.accepted:
            return skipped(
                "a random login also looked accepted; cannot judge this form",
                mechanism="form",
            )

    tries: list[tuple[str, str, bool]] = [("", "", True)]
    for cred in table.for_product(ctx.product):
        if cred.mechanism in (surface.mechanism, "any"):
            tries.append((cred.username, cred.password, False))
    for user, password, blank in tries:
        if not spend():
            break
        result = await attempt(ctx, surface, user, password)
        if result.lockout:
            budget.locked_out = True
            details["lockout"] = True
            break
        if not result.accepted:
            continue
        ctx.credential = (user, password)
        spec = BLANK if blank else DEFAULT
        evidence: Evidence = {
            "mechanism": surface.mechanism,
            "username": user,
            "blank_password": password == "",
            "attempts": spent,
        }
        evidence.update(await _authenticated_counts(ctx, user, password))
        what = "a blank username and password" if blank else f'the default login "{user}"'
        finding = spec.finding(
            ctx.endpoint,
            summary=f"{surface.mechanism} login accepted {what}",
            evidence=evidence,
            product=ctx.product_label,
        )
        return CheckOutcome(details={**details, "accepted": True}, findings=(finding,))
    return CheckOutcome(details={**details, "accepted": False})


CHECK: Check[WebContext] = Check(name="web.credentials", specs=SPECS, run=_run)

__all__ = ["BLANK", "CHECK", "DEFAULT", "SPECS"]
