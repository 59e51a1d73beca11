"""The honeypot score: weights from ``pacsradar/data/honeypot_tells.json``, combined noisy-OR.

``score = 100 * (1 - prod(1 - w / 100))`` over the tells seen: independent pieces of evidence
add up, no pile of weak tells ever reaches 100, and one tell reaches the default threshold only
when it is one no real implementation shows (README "Honeypots").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from pacsradar.dicom.facts import DicomFacts
from pacsradar.dicom.honeypot.tells import TELLS
from pacsradar.models import Finding

#: Evidence keys of the mark a suspect's findings carry (models.Finding.suspected_honeypot).
MARK = "suspected_honeypot"
#: The check's own verdict (score at or above the threshold), before any marking.
SUSPECTED = "suspected"
SCORE = "honeypot_score"
CHECK_ID = "DICOM-HONEYPOT-SUSPECT"


@dataclass(frozen=True)
class TellSpec:
    id: str
    weight: int
    title: str
    source: str
    #: counts only next to a tell that is not supporting: alone it never reaches any threshold
    #: (issue 22 item 3: odil's default acceptor accepts any abstract syntax)
    supporting: bool = False
    #: "service": a function of one endpoint's facts (tells.TELLS); "scan": seen across the
    #: scan's results, after the audit (pacsradar.dicom.honeypot.scanwide)
    scope: str = "service"


@dataclass(frozen=True)
class TellSeen:
    id: str
    weight: int
    evidence: str

    @property
    def line(self) -> str:
        return f"{self.id} (+{self.weight}): {self.evidence}"


@dataclass(frozen=True)
class HoneypotScore:
    score: int
    tells: tuple[TellSeen, ...]
    #: supporting tells seen without a tell they could support: listed, weight not counted
    uncounted: tuple[TellSeen, ...] = ()


@dataclass(frozen=True)
class TellTable:
    default_threshold: int
    tells: tuple[TellSpec, ...]


@functools.cache
def load_table() -> TellTable:
    raw = json.loads(resources.files("pacsradar.data").joinpath("honeypot_tells.json").read_text())
    specs = tuple(
        TellSpec(
            id=str(t["id"]),
            weight=int(t["weight"]),
            title=str(t["title"]),
            source=str(t["source"]),
            supporting=bool(t.get("supporting", False)),
            scope=str(t.get("scope", "service")),
        )
        for t in raw["tells"]
    )
    for spec in specs:
        if not 0 < spec.weight < 100:
            raise ValueError(f"honeypot tell {spec.id}: weight must be 1-99")
        if spec.scope not in ("service", "scan"):
            raise ValueError(f"honeypot tell {spec.id}: scope must be service or scan")
    return TellTable(default_threshold=int(raw["default_threshold"]), tells=specs)


DEFAULT_THRESHOLD: int = 50


def combine(weights: Iterable[int]) -> int:
    remaining = 1.0
    for w in weights:
        remaining *= 1.0 - w / 100.0
    return round(100 * (1.0 - remaining))


def score(facts: DicomFacts, table: TellTable | None = None) -> HoneypotScore:
    table = table or load_table()
    seen: list[TellSeen] = []
    supporting: set[str] = set()
    for spec in table.tells:
        if spec.scope != "service":
            continue  # scan-level tells: pacsradar.dicom.honeypot.scanwide
        fn = TELLS.get(spec.id)
        evidence = fn(facts) if fn is not None else None
        if evidence is not None:
            seen.append(TellSeen(spec.id, spec.weight, evidence))
            if spec.supporting:
                supporting.add(spec.id)
    if all(t.id in supporting for t in seen):
        # Supporting tells alone are behaviour some real implementations show: listed, not scored.
        return HoneypotScore(score=0, tells=(), uncounted=tuple(seen))
    return HoneypotScore(score=combine(t.weight for t in seen), tells=tuple(seen))


def mark_suspects(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """If this endpoint's honeypot finding is above the threshold, mark every finding of it.

    The mark is evidence (``suspected_honeypot``, ``honeypot_score``), so the store, reports,
    SARIF and DefectDojo carry it without a schema change; exposure totals leave marked
    findings out (pacsradar.report.exposure).
    """
    found = tuple(findings)
    suspect = next((f for f in found if f.check_id == CHECK_ID and f.evidence.get(SUSPECTED) is True), None)
    if suspect is None:
        return found
    mark = {MARK: True, SCORE: suspect.evidence.get("score")}
    return tuple(f.model_copy(update={"evidence": {**f.evidence, **mark}}) for f in found)


__all__ = [
    "CHECK_ID",
    "DEFAULT_THRESHOLD",
    "MARK",
    "SCORE",
    "SUSPECTED",
    "HoneypotScore",
    "TellSeen",
    "TellSpec",
    "TellTable",
    "combine",
    "load_table",
    "mark_suspects",
    "score",
]
