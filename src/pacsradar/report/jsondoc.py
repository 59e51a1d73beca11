"""The one JSON document of a scan, written by ``scan -o json``, ``files -o json``, ``demo`` and
``report -f json`` alike, and described by ``schemas/pacsradar-report.schema.json``.

It is the :class:`~pacsradar.models.ScanReport` (so it can be re-imported, see
:func:`load_document`) plus the keys ``schema_version``, ``exposure`` (the headline figure,
:func:`~pacsradar.report.exposure.exposure_of`), ``accepted_risks`` (the findings an owner
accepted; a scan run without the store knows none), ``could_not_test`` and ``fleets`` (services
sharing one configuration, :func:`~pacsradar.report.fleets.fleets_of`). ``schema_version``
changes when a key is removed, renamed or changes meaning; new optional keys keep it.

Like every JSON pacsradar writes, ``<``, ``>`` and ``&`` are ``\\u`` escapes (:func:`safe_json`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacsradar.errors import UsageError
from pacsradar.models import Finding, ScanReport, Severity
from pacsradar.outcome import could_not_test
from pacsradar.report.exposure import Exposure, exposure_of
from pacsradar.report.fixfirst import FixAction, fix_first
from pacsradar.report.fleets import Fleets, fleets_of
from pacsradar.report.safe import escape_markup, safe_json

if TYPE_CHECKING:
    from pacsradar.store.views import AcceptedRisk

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "schemas" / "pacsradar-report.schema.json"
SCHEMA_ID = f"urn:pacsradar:report:{SCHEMA_VERSION}"
#: The keys the document adds to the ScanReport.
ENVELOPE_KEYS: tuple[str, ...] = (
    "schema_version",
    "exposure",
    "accepted_risks",
    "could_not_test",
    "fix_first",
    "fleets",
)
_FIX_KEYS = (
    "headline",
    "action",
    "product",
    "severity",
    "patients",
    "patients_on_services",
    "lower_bound",
    "services",
    "check_ids",
    "findings",
    "steps",
)


def _worst_first(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity.rank, f.endpoint.host, f.endpoint.port, f.check_id))


def scan_document(
    report: ScanReport, *, accepted: Sequence[AcceptedRisk] = (), at: datetime | None = None
) -> dict[str, Any]:
    """The document as a dict: ``schema_version`` first, then the report, then the figures."""
    data: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **report.model_dump(mode="json")}
    # Open endpoints that could not be (fully) tested are never to be read as clean (outcome.py).
    data.update(_envelope(report, accepted=accepted, at=at))
    return data


def fix_entry(action: FixAction) -> dict[str, Any]:
    """One Fix-first action (report/fixfirst.py) as the document carries it."""
    return {
        "headline": action.headline,
        "action": action.action,
        "product": action.product,
        "severity": action.severity.value,
        "patients": action.patients,
        "patients_on_services": action.at_risk,
        "lower_bound": action.lower_bound,
        "services": list(action.services),
        "check_ids": list(action.check_ids),
        "findings": action.findings,
        "steps": [{"check_id": s.check_id, "text": s.text} for s in action.steps],
    }


def document_json(
    report: ScanReport,
    *,
    accepted: Sequence[AcceptedRisk] = (),
    at: datetime | None = None,
    indent: int | None = 2,
) -> str:
    """The document as text (no trailing newline)."""
    return safe_json(scan_document(report, accepted=accepted, at=at), indent=indent)


def _envelope(
    report: ScanReport, *, accepted: Sequence[AcceptedRisk] = (), at: datetime | None = None
) -> dict[str, Any]:
    """The keys the document adds after the report's own (:data:`ENVELOPE_KEYS` less the first)."""
    findings = report.findings
    data: dict[str, Any] = {"exposure": exposure_of(findings).model_dump()}
    risks: list[dict[str, Any]] = []
    if accepted:
        from pacsradar.store.views import accepted_for

        now = at or datetime.now(UTC)
        known = tuple(accepted)
        for f in _worst_first(findings):
            risk = accepted_for(f, known, now)
            if risk is not None:
                risks.append(
                    {
                        "dedupe_key": f.dedupe_key,
                        "reason": risk.reason,
                        "expires_at": risk.expires_at.isoformat(),
                    }
                )
    data["accepted_risks"] = risks
    data["could_not_test"] = [
        {"endpoint": r.endpoint.model_dump(mode="json"), "reason": reason}
        for r, reason in could_not_test(report)
    ]
    data["fleets"] = fleets_of(report.results).model_dump(mode="json")
    data["fix_first"] = [fix_entry(a) for a in fix_first(findings)]
    return data


def iter_document(
    report: ScanReport, *, accepted: Sequence[AcceptedRisk] = (), at: datetime | None = None
) -> Iterator[str]:
    """The document as :func:`document_json` writes it (``indent=2``), in pieces: byte for byte the
    same text, without the whole document ever held as one dict or string (issue 26: a dense
    scan's document is ~16 kB per live host, and escaping it whole made copies). The results, the
    bulk of it, are dumped one at a time."""
    enc = json.JSONEncoder(indent=2, ensure_ascii=True)

    def value(obj: Any, depth: int) -> str:
        # A nested value of json.dumps(indent=2) is its own dump shifted right: strings hold no
        # raw line break (JSON escapes it), so every newline is an indentation point.
        return escape_markup(enc.encode(obj)).replace("\n", "\n" + "  " * depth)

    yield "{"
    head: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    head.update(report.model_dump(mode="json", exclude={"results"}))
    keys = [*head, "results"]
    tail = _envelope(report, accepted=accepted, at=at)
    keys += list(tail)
    first = True
    for key in keys:
        yield ("\n  " if first else ",\n  ") + escape_markup(json.dumps(key)) + ": "
        first = False
        if key != "results":
            yield value(head[key] if key in head else tail[key], 1)
            continue
        if not report.results:
            yield "[]"
            continue
        yield "["
        for i, r in enumerate(report.results):
            yield ("\n    " if i == 0 else ",\n    ") + value(r.model_dump(mode="json"), 2)
        yield "\n  ]"
    yield "\n}"


def write_document(
    report: ScanReport, fh: Any, *, accepted: Sequence[AcceptedRisk] = (), at: datetime | None = None
) -> None:
    """Write :func:`iter_document` to a text file (no trailing newline)."""
    for piece in iter_document(report, accepted=accepted, at=at):
        fh.write(piece)


def load_document(text: str) -> ScanReport:
    """The :class:`ScanReport` inside a document (or a bare ScanReport, as written before 1)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError("the report is not valid JSON") from exc
    if not isinstance(data, dict):
        raise UsageError("the report is not a JSON object")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise UsageError(f"unsupported report schema_version (this pacsradar reads {SCHEMA_VERSION})")
    for key in ENVELOPE_KEYS:
        data.pop(key, None)
    return ScanReport.model_validate(data)


def schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the document, built from the models it serialises."""
    base = ScanReport.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    defs: dict[str, Any] = dict(base.pop("$defs", {}))
    defs["Exposure"] = Exposure.model_json_schema(mode="serialization")
    fleets = Fleets.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    defs.update(fleets.pop("$defs", {}))
    defs["Fleets"] = fleets
    defs["AcceptedRiskEntry"] = {
        "type": "object",
        "title": "AcceptedRiskEntry",
        "description": "A finding of this scan that its owner accepted, until expires_at.",
        "properties": {
            "dedupe_key": {"type": "string"},
            "reason": {"type": "string"},
            "expires_at": {"type": "string", "format": "date-time"},
        },
        "required": ["dedupe_key", "reason", "expires_at"],
        "additionalProperties": False,
    }
    defs["UntestedEntry"] = {
        "type": "object",
        "title": "UntestedEntry",
        "description": "An open endpoint that could not be (fully) tested, and why: not the same as safe.",
        "properties": {"endpoint": {"$ref": "#/$defs/Endpoint"}, "reason": {"type": "string"}},
        "required": ["endpoint", "reason"],
        "additionalProperties": False,
    }
    defs["FixAction"] = {
        "type": "object",
        "title": "FixAction",
        "description": (
            "What to fix first: one remediation on the services of one product, ranked by the distinct"
            " patients it protects (only actions that close access to the data claim patients)."
        ),
        "properties": {
            "headline": {"type": "string"},
            "action": {"type": "string"},
            "product": {"type": ["string", "null"]},
            "severity": {"type": "string", "enum": [s.value for s in Severity]},
            "patients": {"type": "integer", "minimum": 0},
            "patients_on_services": {"type": "integer", "minimum": 0},
            "lower_bound": {"type": "boolean"},
            "services": {"type": "array", "items": {"type": "string"}},
            "check_ids": {"type": "array", "items": {"type": "string"}},
            "findings": {"type": "integer", "minimum": 1},
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"check_id": {"type": "string"}, "text": {"type": "string"}},
                    "required": ["check_id", "text"],
                    "additionalProperties": False,
                },
            },
        },
        "required": list(_FIX_KEYS),
        "additionalProperties": False,
    }
    properties = {
        "schema_version": {"const": SCHEMA_VERSION, "description": "Version of this document's shape."},
        **base.pop("properties"),
        "exposure": {"$ref": "#/$defs/Exposure"},
        "accepted_risks": {"type": "array", "items": {"$ref": "#/$defs/AcceptedRiskEntry"}},
        "could_not_test": {"type": "array", "items": {"$ref": "#/$defs/UntestedEntry"}},
        "fleets": {"$ref": "#/$defs/Fleets"},
        "fix_first": {
            "type": "array",
            "items": {"$ref": "#/$defs/FixAction"},
            "description": "Actions, the one protecting the most patients first.",
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "pacsradar scan report",
        "description": (
            "What `pacsradar scan -o json`, `files -o json` and `report -f json` write: the scan"
            " report (counts, keywords and keyed hashes only, never a PHI value) plus its exposure"
            " figure and accepted risks."
        ),
        "type": "object",
        "properties": properties,
        "required": ["schema_version", *base.pop("required", []), "exposure", "accepted_risks"],
        "additionalProperties": False,
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    """The schema file's exact content (``python -m pacsradar.docs`` writes it)."""
    return json.dumps(schema(), indent=2, ensure_ascii=True) + "\n"


__all__ = [
    "ENVELOPE_KEYS",
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "document_json",
    "fix_entry",
    "iter_document",
    "load_document",
    "scan_document",
    "schema",
    "schema_text",
    "write_document",
]
