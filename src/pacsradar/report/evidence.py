"""Evidence as a person reads it: sentences and small tables, never raw JSON.

A finding's evidence is a flat mapping of counts, keywords, year ranges, keyed hashes and short
peer strings (already bounded by :func:`pacsradar.phi.peer_text`). The report shows

* a few **sentences**: exposure counts with their attribute keywords and study years, CVE lists
  folded ("9 CVEs, fixed in 1.12.11, newest CVE-2026-5445"), keyed hashes as a count;
* **small tables** where rows carry meaning (one row per CVE), sources listed once;
* the **full evidence** as key/value rows for a ``<details>``: lists de-duplicated, empty
  values dropped, hashes kept (they are keyed, never values).

Everything returned is plain text: the templates escape it (Jinja autoescape).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pacsradar.models import EvidenceValue

#: Keys folded into a sentence elsewhere (not repeated as "key: value").
_COUNT_KEYS = ("patients", "studies", "images", "series", "instances", "records")
_CVE_KEYS = frozenset({"cves", "fixed_in", "sources", "confidence", "backported_by"})
_FIXED = re.compile(r"fixed in (\d+(?:\.\d+)*)")
_CVE = re.compile(r"CVE-(\d{4})-(\d+)")
#: At most this many values of a list in a sentence; the rest is "and N more".
LIST_SHOWN = 6
#: At most this many other facts in the visible sentence; every fact is in the full evidence.
FACTS_SHOWN = 4


@dataclass(frozen=True)
class Table:
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class EvidenceView:
    sentences: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    #: unique source URLs (CVE advisories), once each
    sources: tuple[str, ...] = ()
    #: (key, text) rows of the whole evidence, for a <details>
    full: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    #: the sentence that stands for the finding's summary (a CVE list folded), or ""
    fold: str = ""

    @property
    def folds_summary(self) -> bool:
        """The summary goes behind the details: :attr:`fold` says it shorter."""
        return bool(self.fold)

    @property
    def empty(self) -> bool:
        return not (self.sentences or self.tables or self.full)


def _label(key: str) -> str:
    return key.replace("_", " ")


def _text(value: EvidenceValue, key: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value) if "year" in key else f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def unique(values: Sequence[object]) -> list[str]:
    """The distinct non-empty values of a list, in first-seen order."""
    out: dict[str, None] = {}
    for v in values:
        text = "" if v is None else _text(v)  # type: ignore[arg-type]
        if text.strip():
            out.setdefault(text, None)
    return list(out)


def fold_list(values: Sequence[object], shown: int = LIST_SHOWN) -> str:
    items = unique(values)
    if len(items) <= shown:
        return ", ".join(items)
    return f"{', '.join(items[:shown])} and {len(items) - shown:,} more"


def _is_count(value: EvidenceValue) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _cve_key(cve: str) -> tuple[int, int]:
    m = _CVE.fullmatch(cve.strip())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _column(evidence: Mapping[str, EvidenceValue], key: str, n: int) -> list[str]:
    raw = evidence.get(key)
    values = [_text(v) for v in raw] if isinstance(raw, list) else []
    return (values + [""] * n)[:n]


def cve_summary(evidence: Mapping[str, EvidenceValue]) -> tuple[str, Table | None]:
    """'9 CVEs (2 likely), fixed in 1.12.11, newest CVE-2026-5445' and one row per CVE."""
    raw = evidence.get("cves")
    if not isinstance(raw, list) or not raw:
        return "", None
    cves = [str(c) for c in raw]
    n = len(cves)
    fixed = _column(evidence, "fixed_in", n)
    confidence = _column(evidence, "confidence", n)
    backport = _column(evidence, "backported_by", n)
    parts = [f"{len(set(cves)):,} {'CVE' if len(set(cves)) == 1 else 'CVEs'}"]
    likely = sum(1 for c in confidence if c == "likely")
    if likely:
        parts[0] += f" ({likely} likely)"
    versions = [m.group(1) for f in fixed if (m := _FIXED.search(f))]
    if versions:
        parts.append(f"fixed in {max(versions, key=_version)}")
    unfixed = sum(1 for f in fixed if f and not _FIXED.search(f))
    if unfixed:
        parts.append(f"{unfixed} with no fixed release listed")
    parts.append(f"newest {max(cves, key=_cve_key)}")
    if any(backport):
        parts.append(f"{sum(1 for b in backport if b)} with a distribution backport")
    order = sorted(range(n), key=lambda i: _cve_key(cves[i]), reverse=True)
    headers = ["CVE", "Fixed", "Confidence"] + (["Backport"] if any(backport) else [])
    rows = tuple(
        tuple([cves[i], fixed[i], confidence[i]] + ([backport[i]] if any(backport) else [])) for i in order
    )
    return ", ".join(parts), Table(caption="Known CVEs", headers=tuple(headers), rows=rows)


def _counts_sentence(evidence: Mapping[str, EvidenceValue]) -> str:
    parts = []
    for key in _COUNT_KEYS:
        value = evidence.get(key)
        if _is_count(value):
            assert isinstance(value, int)
            noun = key if value != 1 else {"patients": "patient", "studies": "study"}.get(key, key[:-1])
            parts.append(f"{value:,} {noun}")
    if not parts:
        return ""
    text = ", ".join(parts)
    raw = evidence.get("study_years")
    years: list[object] = [evidence.get("study_year_min"), evidence.get("study_year_max")]
    if isinstance(raw, list):
        years = list(raw)
    if len(years) == 2 and all(isinstance(y, int) and not isinstance(y, bool) for y in years):
        text += f" (studies {years[0]}-{years[1]})" if years[0] != years[1] else f" (studies {years[0]})"
    if evidence.get("truncated") is True:
        text = "at least " + text + " (stopped at --max-records)"
    return text[0].upper() + text[1:]


def view(evidence: Mapping[str, EvidenceValue]) -> EvidenceView:
    sentences: list[str] = []
    tables: list[Table] = []
    counts = _counts_sentence(evidence)
    if counts:
        sentences.append(counts)
    cve_text, cve_table = cve_summary(evidence)
    fold = ""
    if cve_text:
        version = evidence.get("version")
        product = evidence.get("product")
        who = " ".join(_text(v) for v in (product, version) if isinstance(v, str) and v)
        fold = f"{who}: {cve_text}" if who else cve_text
        sentences.append(fold)
    if cve_table is not None:
        tables.append(cve_table)
    raw_sources = evidence.get("sources")
    sources = tuple(unique(raw_sources)) if isinstance(raw_sources, list) else ()
    used = set(_COUNT_KEYS) | {"study_years", "study_year_min", "study_year_max", "truncated"}
    if cve_text:
        used |= _CVE_KEYS | {"product", "version"}
    facts: list[str] = []
    for key, value in sorted(evidence.items()):
        # A zero count says nothing a reader acts on; it stays in the full evidence.
        if key in used or value in (None, "", []) or (_is_count(value) and value == 0):
            continue
        if key.endswith("_hashes") and isinstance(value, list):
            facts.append(f"{len(unique(value)):,} keyed {_label(key)} (no values)")
        elif isinstance(value, list):
            facts.append(f"{_label(key)}: {fold_list(value)}")
        else:
            facts.append(f"{_label(key)}: {_text(value, key)}")
    if len(facts) > FACTS_SHOWN:
        facts = [*facts[:FACTS_SHOWN], f"{len(facts) - FACTS_SHOWN} more in the full evidence"]
    if facts:
        sentences.append("; ".join(facts))
    full = tuple(
        (key, text)
        for key, value in sorted(evidence.items())
        if value is not None
        and (text := "; ".join(unique(value)) if isinstance(value, list) else _text(value, key)).strip()
    )
    return EvidenceView(
        sentences=tuple(sentences),
        tables=tuple(tables),
        sources=sources,
        full=full,
        fold=fold,
    )


__all__ = ["EvidenceView", "Table", "cve_summary", "fold_list", "unique", "view"]
