"""The DICOM PS3.15 Annex E Basic Profile table (Table E.1-1), loaded from the packaged CSV.

The table lists every attribute the Basic Application Level Confidentiality Profile removes,
empties or replaces (actions X, Z, D, U and their combinations). An attribute of that table that is
present and non-empty in a file is one "line of PHI": it identifies the patient, or links records
(UIDs) that do. Private attributes (odd groups, PS3.5 §7.8.1) are in the table as a group of their
own and are counted separately.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class AnnexE:
    """Tag (``group << 16 | element``) to keyword for the Basic Profile, plus the repeating groups."""

    keywords: dict[int, str]
    actions: dict[int, str]
    #: Repeating-group rows such as (50xx,xxxx) Curve Data or (60xx,3000) Overlay Data:
    #: (mask, value, label). ``tag & mask == value`` matches.
    masks: tuple[tuple[int, int, str], ...]

    def keyword(self, tag: int) -> str | None:
        """The Annex E keyword (or repeating-group label) for a standard tag, else None."""
        kw = self.keywords.get(tag)
        if kw is not None:
            return kw
        for mask, value, label in self.masks:
            if tag & mask == value:
                return label
        return None


def _parse_tag(text: str) -> tuple[int, int] | None:
    """Parse ``(GGGG,EEEE)`` where x/X digits are wildcards. Returns (mask, value)."""
    text = text.strip()
    if len(text) != 11 or text[0] != "(" or text[5] != "," or text[10] != ")":
        return None
    hex_digits = text[1:5] + text[6:10]
    mask = 0
    value = 0
    for ch in hex_digits:
        mask <<= 4
        value <<= 4
        if ch in "xX":
            continue
        try:
            digit = int(ch, 16)
        except ValueError:
            return None
        mask |= 0xF
        value |= digit
    return mask, value


def _label(name: str) -> str:
    return "".join(part for part in name.title().split() if part.isalnum())


@functools.cache
def load() -> AnnexE:
    """Load Table E.1-1 once per process."""
    text = resources.files("pacsradar").joinpath("data", "ps315_annex_e.csv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    keywords: dict[int, str] = {}
    actions: dict[int, str] = {}
    masks: list[tuple[int, int, str]] = []
    for row in csv.DictReader(lines):
        parsed = _parse_tag(row["tag"])
        if parsed is None:
            # "(GGGG,EEEE) where GGGG is odd": private attributes, handled by the walker itself.
            continue
        mask, value = parsed
        keyword = row["keyword"] or _label(row["name"])
        if mask == 0xFFFFFFFF:
            keywords[value] = keyword
            actions[value] = row["basic_profile"]
        else:
            masks.append((mask, value, keyword))
    return AnnexE(keywords=keywords, actions=actions, masks=tuple(masks))


__all__ = ["AnnexE", "load"]
