"""WEB-SERVICE-EXPOSED: which PACS web product answers, from the evidence table.

The table (``data/web_fingerprints.json``) holds probes (paths) and signatures (titles, headers,
JSON shapes, body patterns); this module only evaluates it, so adding a product is a data edit.
Probes are few per host: two always, product-specific ones only while nothing is identified (or
once a product is identified, for its plugins), capped by ``max_probes``.
"""

from __future__ import annotations

import re
from typing import Any

from pacsradar.checks import Check, CheckOutcome, CheckSpec
from pacsradar.errors import ScanError
from pacsradar.models import Finding, Severity
from pacsradar.phi import peer_text
from pacsradar.web.client import HttpReply
from pacsradar.web.context import WebContext
from pacsradar.web.data import Probe, Signature, fingerprint_table
from pacsradar.web.facts import GENERIC_DICOMWEB, VERSION_OK, FingerprintResult
from pacsradar.web.html import Page, parse_page
from pacsradar.web.refs import ACCESS

_AE_OK = re.compile(r"^[A-Za-z0-9_\-. ]{1,16}$")  # PS3.5 Table 6.2-1 AE VR, minus '\\' and URL metas

SERVICE_EXPOSED = CheckSpec(
    id="WEB-SERVICE-EXPOSED",
    title="Medical imaging web service exposed",
    severity=Severity.INFO,
    category="exposure",
    description=(
        "A PACS, viewer or DICOMweb web service answers on this endpoint. Informational: the"
        " other web checks say whether it leaks data."
    ),
    remediation=(
        "Confirm the service is meant to be reachable from this network; otherwise bind it to"
        " an internal interface or put it behind a VPN or an authenticating reverse proxy."
    ),
    product_remediation={
        "Orthanc": "Orthanc: keep RemoteAccessAllowed false unless remote access is required.",
        "WildFly": "WildFly: bind the management interface (9990) to localhost only.",
    },
    references=ACCESS,
)

SPECS: tuple[CheckSpec, ...] = (SERVICE_EXPOSED,)


class _Parsed:
    """Parse each reply once (title, JSON) for all signatures."""

    def __init__(self, reply: HttpReply) -> None:
        self.reply = reply
        self._page: Page | None = None
        self._json: Any = None
        self._json_done = False

    @property
    def page(self) -> Page:
        if self._page is None:
            self._page = parse_page(self.reply.body)
        return self._page

    @property
    def json(self) -> Any:
        if not self._json_done:
            self._json_done = True
            head = self.reply.body[:64].lstrip()[:1]
            if head in (b"{", b"[") and not self.reply.truncated:
                try:
                    self._json = self.reply.json()
                except ScanError:
                    self._json = None
        return self._json

    @property
    def text(self) -> str:
        return self.reply.text()


def _matches(sig: Signature, parsed: _Parsed) -> bool:
    reply = parsed.reply
    if sig.status and reply.status not in sig.status:
        return False
    if sig.header is not None:
        value = reply.header(sig.header)
        if value is None or (sig.header_regex and not sig.header_regex.search(value[:1024])):
            return False
    if sig.title is not None:
        title = parsed.page.title
        if title is None or not sig.title.search(title):
            return False
    if sig.body is not None and not sig.body.search(parsed.text):
        return False
    if sig.json_keys:
        data = parsed.json
        if not isinstance(data, dict) or not all(k in data for k in sig.json_keys):
            return False
    if sig.json_list_keys:
        data = parsed.json
        if not (isinstance(data, list) and data and isinstance(data[0], dict)):
            return False
        if not all(k in data[0] for k in sig.json_list_keys):
            return False
    return True


def _version(sig: Signature, parsed: _Parsed) -> str | None:
    raw: object = None
    if sig.version_json:
        data = parsed.json
        if isinstance(data, dict):
            raw = data.get(sig.version_json)
    elif sig.version_regex:
        match = sig.version_regex.search(parsed.text)
        raw = match.group(1) if match else None
    if not isinstance(raw, str):
        return None
    text = peer_text(raw, 32)
    return text if VERSION_OK.match(text) else None


def _aets(parsed: _Parsed) -> tuple[str, ...]:
    data = parsed.json
    found: list[str] = []
    if isinstance(data, list):
        for item in data[:16]:
            aet = item.get("dicomAETitle") if isinstance(item, dict) else None
            if isinstance(aet, str) and _AE_OK.match(aet) and aet.strip():
                found.append(aet.strip())
    return tuple(found[:3])


async def identify(ctx: WebContext) -> FingerprintResult:
    table = fingerprint_table()
    matched: list[tuple[Signature, str | None]] = []
    sent = errors = 0
    parsed_by_probe: dict[str, _Parsed] = {}

    def primary() -> str | None:
        return next((s.product for s, _ in matched if not s.component), None)

    async def run(probe: Probe) -> None:
        nonlocal sent, errors
        if sent >= table.max_probes:
            return
        if probe.ports and ctx.endpoint.port not in probe.ports:
            return
        sent += 1
        try:
            reply = await ctx.get(probe.path)
        except ScanError:
            if probe.id == "root":
                raise
            errors += 1
            return
        parsed = _Parsed(reply)
        parsed_by_probe[probe.id] = parsed
        for sig in table.signatures:
            if sig.probe in (probe.id, "*") and _matches(sig, parsed):
                matched.append((sig, _version(sig, parsed)))

    # Pass 1: generic probes, then product-specific ones while nothing is identified.
    for probe in table.probes:
        if probe.when == "always" or (probe.when == "unidentified" and primary() is None):
            await run(probe)
    # Pass 2: plugin/companion probes of the product found.
    for probe in table.probes:
        if probe.when == "product" and probe.product == primary():
            await run(probe)

    product = primary()
    version = next((v for s, v in matched if s.product == product and v), None)
    components = tuple(dict.fromkeys(s.product for s, _ in matched if s.component))
    confidence = next((s.confidence for s, _ in matched if s.product == product), None)
    root = parsed_by_probe.get("root")
    server_header = root.reply.header("server") if root else None
    auth_required = any(p.reply.needs_auth for p in parsed_by_probe.values())
    login_form = bool(root and root.page.login_form is not None)
    aets = _aets(parsed_by_probe["dcm4chee-aets"]) if "dcm4chee-aets" in parsed_by_probe else ()
    return FingerprintResult(
        product=product,
        version=version,
        components=components,
        confidence=confidence,
        auth_required=auth_required,
        login_form=login_form,
        server=peer_text(server_header, 64) if server_header else None,
        probes=sent,
        probe_errors=errors,
        matched=tuple(dict.fromkeys(s.product for s, _ in matched)),
        aets=aets,
        root_status=root.reply.status if root else None,
        root_digest=ctx.options.hasher.digest(root.reply.body) if root else None,
    )


def learn_version(ctx: WebContext, raw: object) -> None:
    """A version read later (e.g. /system behind a login) completes the fingerprint."""
    if ctx.fingerprint is not None:
        ctx.fingerprint = ctx.fingerprint.with_version(raw)


def learn_dicomweb(ctx: WebContext) -> None:
    """A DICOMweb answer on an otherwise unidentified service names it (PS3.18)."""
    if ctx.fingerprint is not None:
        ctx.fingerprint = ctx.fingerprint.as_dicomweb()


async def _run(ctx: WebContext) -> CheckOutcome:
    result = ctx.fingerprint if ctx.fingerprint is not None else await identify(ctx)
    ctx.fingerprint = result
    if result.auth_required or result.login_form:
        ctx.auth_seen = True
    details: dict[str, int | str | bool | list[str] | None] = {
        "scheme": ctx.scheme,
        "product": result.product,
        "version": result.version,
        "components": list(result.components),
        "confidence": result.confidence,
        "auth_required": result.auth_required,
        "login_form": result.login_form,
        "server": result.server,
        "probes": result.probes,
        "probe_errors": result.probe_errors,
        "root_status": result.root_status,
        "root_digest": result.root_digest,
    }
    findings: tuple[Finding, ...] = ()
    if result.product is not None:
        label = ctx.product_label or result.product
        findings = (
            SERVICE_EXPOSED.finding(
                ctx.endpoint,
                summary=f"{label} answers over {ctx.scheme.upper()}"
                + (" (authentication requested)" if result.auth_required else ""),
                evidence={
                    "product": result.product,
                    "version": result.version,
                    "components": list(result.components),
                    "confidence": result.confidence,
                    "auth_required": result.auth_required,
                    "scheme": ctx.scheme,
                },
                product=label,
            ),
        )
    return CheckOutcome(details=details, findings=findings)


CHECK: Check[WebContext] = Check(name="web.fingerprint", specs=SPECS, run=_run)

__all__ = [
    "CHECK",
    "GENERIC_DICOMWEB",
    "SERVICE_EXPOSED",
    "SPECS",
    "FingerprintResult",
    "identify",
    "learn_dicomweb",
    "learn_version",
]
