"""SARIF 2.1.0 (OASIS), validated in the tests against the official schema shipped in ``schemas/``.

A network finding has no source file: each result points at the endpoint as a URI
(``dicom://host:port``) in both a physical and a logical location, and carries the store's
dedupe key as a partial fingerprint so a SARIF consumer tracks it across scans.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from pacsradar import __version__
from pacsradar.models import Finding, Severity
from pacsradar.outcome import could_not_test
from pacsradar.report.context import ReportContext
from pacsradar.report.safe import safe_json, safe_url

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SCHEMA_RESOURCE = "schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/pacsradar/"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
#: GitHub code scanning reads ``security-severity`` (a CVSS-like score) from rule properties.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


@cache
def sarif_schema() -> dict[str, Any]:
    """The official SARIF 2.1.0 JSON schema (draft-04) shipped with pacsradar."""
    text = resources.files("pacsradar.report").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def endpoint_uri(finding: Finding) -> str:
    ep = finding.endpoint
    if ep.protocol == "file":
        return "file://" + quote(ep.host, safe="/")
    scheme = "tcp" if ep.protocol == "unknown" else ep.protocol
    host = f"[{ep.host}]" if ":" in ep.host else quote(ep.host, safe=".-_~")
    return f"{scheme}://{host}:{ep.port}"


def _rule(finding: Finding) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": finding.check_id,
        "name": "".join(part.capitalize() for part in finding.check_id.replace("_", "-").split("-")),
        "shortDescription": {"text": finding.title},
        "fullDescription": {"text": finding.title},
        "help": {"text": finding.remediation or finding.title},
        "defaultConfiguration": {"level": _LEVEL[finding.severity]},
        "properties": {
            "tags": ["security", "medical-imaging", finding.endpoint.protocol],
            "security-severity": _SECURITY_SEVERITY[finding.severity],
        },
    }
    url = next((safe_url(r.url) for r in finding.references if safe_url(r.url)), None)
    if url:
        rule["helpUri"] = url
    if finding.cwe:
        rule["properties"]["cwe"] = finding.cwe
    return rule


def build_sarif(ctx: ReportContext) -> dict[str, Any]:
    report = ctx.report
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for f in ctx.findings:
        if f.check_id not in index:
            index[f.check_id] = len(rules)
            rules.append(_rule(f))
        uri = endpoint_uri(f)
        result: dict[str, Any] = {
            "ruleId": f.check_id,
            "ruleIndex": index[f.check_id],
            "kind": "fail",
            "level": _LEVEL[f.severity],
            "message": {"text": f"{f.title}: {f.summary}" if f.summary else f.title},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": {"uri": uri}},
                    "logicalLocations": [
                        {"name": f.endpoint.label, "fullyQualifiedName": uri, "kind": "resource"}
                    ],
                }
            ],
            "partialFingerprints": {"pacsradarDedupeKey/v1": f.dedupe_key},
            "properties": {
                "severity": f.severity.value,
                "endpoint": f.endpoint.label,
                "protocol": f.endpoint.protocol,
                "evidence": dict(f.evidence),
                "remediation": f.remediation,
            },
        }
        if f.product:
            result["properties"]["product"] = f.product
        if f.suspected_honeypot:  # README "Honeypots": verify out of band, not a breach
            result["properties"]["suspectedHoneypot"] = True
        first = ctx.first_seen.get(f.dedupe_key)
        if first:
            result["properties"]["firstSeen"] = _utc(first)
        risk = ctx.accepted_for(f)
        if risk is not None:
            result["suppressions"] = [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": f"{risk.reason} (until {_utc(risk.expires_at)})",
                }
            ]
        results.append(result)
    invocation: dict[str, Any] = {
        "executionSuccessful": not report.stats.interrupted,
        "startTimeUtc": _utc(report.started_at),
    }
    if report.finished_at:
        invocation["endTimeUtc"] = _utc(report.finished_at)
    # SARIF 2.1.0 §3.20.21: problems the tool met while running. An endpoint that could not be
    # tested is one, so a SARIF consumer does not read its missing results as "clean".
    untested = could_not_test(report)
    if untested:
        invocation["toolExecutionNotifications"] = [
            {
                "level": "warning",
                "message": {"text": f"could not test {r.endpoint.label}: {reason}"},
                "descriptor": {"id": "could-not-test"},
            }
            for r, reason in untested
        ]
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pacsradar",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"pacsradar/{report.scan_id}"},
                "invocations": [invocation],
                "results": results,
                "properties": {
                    "scope": list(report.scope),
                    "exposure": ctx.exposure.model_dump(),
                },
            }
        ],
    }


def render_sarif(ctx: ReportContext) -> str:
    return safe_json(build_sarif(ctx)) + "\n"


__all__ = ["SARIF_SCHEMA_URI", "SARIF_VERSION", "build_sarif", "render_sarif", "sarif_schema"]
