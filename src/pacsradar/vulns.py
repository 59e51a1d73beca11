"""Known CVEs by product and version (``pacsradar/data/cves.json``), shared by the web and DICOM
CVE checks. Standard library only: a DICOM-only scan imports it without the web stack.

Every entry was built from a public advisory and records where from (``source_url``), when
(``published`` where the advisory says, and ``retrieved``), and the version bound the advisory
gives: ``fixed_in`` (first fixed release, exclusive) and/or ``affected_up_to`` (last affected
release, inclusive). ``surfaces`` says where the flaw is reachable (``dicom-scp``: a DICOM
server port; ``dicom-scu``: DCMTK's client tools; ``dicom-file``: parsing received files;
``http``; ``hl7``). A version string alone is not proof: distributions backport fixes, so a
match is "possible" unless the behaviour itself was observed.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from pacsradar.models import Evidence

SURFACES = frozenset({"dicom-scp", "dicom-scu", "dicom-file", "http", "hl7"})


@dataclass(frozen=True)
class Backport:
    distribution: str
    package_version: str


@dataclass(frozen=True)
class CveEntry:
    product: str
    cve: str
    fixed_in: tuple[int, ...] | None
    affected_up_to: tuple[int, ...] | None
    affected_from: tuple[int, ...] | None
    #: how the bound reads in a report ("fixed in 1.12.11", "affects up to 3.7.0")
    bound_text: str
    severity: str
    title: str
    observable: str | None
    surfaces: frozenset[str]
    backports: tuple[Backport, ...]
    source: str
    source_url: str
    published: str | None
    retrieved: str

    @property
    def fixed_in_text(self) -> str:
        return self.bound_text

    def affects(self, version: tuple[int, ...]) -> bool:
        if self.affected_from is not None and version < self.affected_from:
            return False
        if self.fixed_in is not None and version >= self.fixed_in:
            return False
        return not (self.affected_up_to is not None and version > self.affected_up_to)


def parse_version(text: str) -> tuple[int, ...] | None:
    """Leading dotted number of a version string ("1.10.1+dfsg" -> (1, 10, 1))."""
    match = re.match(r"\s*v?(\d{1,6}(?:\.\d{1,6}){0,4})", text)
    if not match:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


def _bound(entry: dict[str, object], key: str) -> tuple[int, ...] | None:
    raw = entry.get(key)
    if raw is None:
        return None
    parsed = parse_version(str(raw))
    if parsed is None:
        raise ValueError(f"{entry.get('cve')}: bad {key}")
    return parsed


@functools.cache
def cve_table() -> tuple[CveEntry, ...]:
    """The table, validated: a bad edit fails the tests, not a scan."""
    text = resources.files("pacsradar").joinpath("data", "cves.json").read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("schema") != 2:
        raise ValueError("cves.json: unsupported schema")
    entries = []
    for e in data["entries"]:
        cve = str(e["cve"])
        fixed, up_to = _bound(e, "fixed_in"), _bound(e, "affected_up_to")
        if fixed is None and up_to is None:
            raise ValueError(f"{cve}: needs fixed_in or affected_up_to")
        url, published, retrieved = e.get("source_url"), e.get("published"), e.get("retrieved")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise ValueError(f"{cve}: needs an https source_url")
        if not isinstance(retrieved, str) or not _DATE.match(retrieved):
            raise ValueError(f"{cve}: needs a retrieved date")
        if published is not None and (not isinstance(published, str) or not _DATE.match(published)):
            raise ValueError(f"{cve}: bad published date")
        surfaces = frozenset(e["surfaces"])
        if not surfaces or not surfaces <= SURFACES:
            raise ValueError(f"{cve}: bad surfaces")
        parts = []
        if fixed is not None:
            parts.append(f"fixed in {e['fixed_in']}")
        if up_to is not None:
            parts.append(f"affects up to {e['affected_up_to']}")
        entries.append(
            CveEntry(
                product=str(e["product"]),
                cve=cve,
                fixed_in=fixed,
                affected_up_to=up_to,
                affected_from=_bound(e, "affected_from"),
                bound_text="; ".join(parts),
                severity=str(e["severity"]),
                title=str(e["title"]),
                observable=e.get("observable"),
                surfaces=surfaces,
                backports=tuple(Backport(b["distribution"], b["package_version"]) for b in e["backports"]),
                source=str(e["source"]),
                source_url=url,
                published=published,
                retrieved=retrieved,
            )
        )
    return tuple(entries)


def matching(product: str, version: str, surfaces: frozenset[str] | None = None) -> list[CveEntry]:
    """Entries for ``product`` whose range holds ``version`` (and one of ``surfaces``, if given)."""
    parsed = parse_version(version)
    if parsed is None:
        return []
    return [
        e
        for e in cve_table()
        if e.product.lower() == product.lower()
        and e.affects(parsed)
        and (surfaces is None or e.surfaces & surfaces)
    ]


def backport_note(entry: CveEntry) -> str:
    return "; ".join(f"{b.distribution} backports the fix in {b.package_version}" for b in entry.backports)


def cve_evidence(product: str, version: str, hits: Sequence[CveEntry]) -> Evidence:
    """A known-CVE finding's evidence: the version claim and, per CVE, one entry of each
    column (every match is only possible: a version string alone is not proof)."""
    return {
        "product": product,
        "version": version,
        "cves": [e.cve for e in hits],
        "confidence": ["possible"] * len(hits),
        "fixed_in": [e.fixed_in_text for e in hits],
        "sources": [e.source_url for e in hits],
        "backported_by": [backport_note(e) or "" for e in hits],
    }


__all__ = ["Backport", "CveEntry", "backport_note", "cve_evidence", "cve_table", "matching", "parse_version"]
