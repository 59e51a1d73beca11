"""Listings (``scans``, ``checks``, ``diff``, ``risk list``): a table on a terminal, lines off it.

* **Piped** (or redirected), a listing is one tab-separated line per row, like ``scan``'s own
  output: a ``#`` header line naming the columns, then the rows with every value whole, so
  ``pacsradar checks | grep DICOM-KNOWN-CVE`` and ``pacsradar scans | cut -f1`` just work.
* **On a terminal**, the key columns (a scan id, a check id: what the user pastes into the next
  command) are never cut or folded at any width; the other columns fold to what is left. When
  even that does not fit, the least important columns go first, and the listing says which
  (rather than a row of one-letter slices).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pacsradar.phi import peer_text

#: narrowest a folded column may get before it is dropped instead (a word, not a letter)
MIN_FOLDED = 6
#: a longer word (a URL, a reference) may fold: it must not widen its column to its length
MAX_WORD = 12


def _plain(value: str) -> str:
    # One row, one line: a tab or newline inside a value (a peer's title...) must not split it.
    return peer_text(value.replace("\t", " ").replace("\n", " ").replace("\r", " "), 2000)


def write_lines(out: Console, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """The piped form: ``# col1<TAB>col2...`` then one tab-separated line per row."""
    write = out.file.write
    write("# " + "\t".join(columns) + "\n")
    for row in rows:
        write("\t".join(_plain(x) for x in row) + "\n")
    out.file.flush()


def _needed(widths: Sequence[int]) -> int:
    # box.SIMPLE_HEAD without edges draws one blank cell between columns; padding (0, 1) adds
    # one cell either side of each column but the outer two (pad_edge=False)
    n = len(widths)
    return sum(widths) + 2 * n - 2 + (n - 1)


def _fit(names: Sequence[str], least: dict[str, int], full: dict[str, int], room: int) -> dict[str, int]:
    """Each column's width: at least ``least``, the spare room shared out up to ``full``."""
    widths = dict(least)
    spare = room - _needed(list(widths.values()))
    while spare > 0:
        short = [c for c in names if widths[c] < full[c]]
        if not short:
            break
        share = max(1, spare // len(short))
        for name in short:
            grow = min(share, full[name] - widths[name], spare)
            widths[name] += grow
            spare -= grow
    return widths


def print_listing(
    out: Console,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    keep: Collection[str] = (),
    title: str | None = None,
    drop_order: Sequence[str] = (),
) -> None:
    """``rows`` under ``columns``: on a terminal a table whose ``keep`` columns are whole,
    else :func:`write_lines`. ``drop_order`` names the columns to leave out first when the
    terminal is too narrow even for folded columns of :data:`MIN_FOLDED` cells."""
    if not out.is_terminal:
        write_lines(out, columns, rows)
        return
    shown = list(columns)
    full = {c: max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)}

    words = {
        c: max([len(w) for w in c.split()] + [min(len(w), MAX_WORD) for r in rows for w in r[i].split()])
        for i, c in enumerate(columns)
    }

    def folded(name: str) -> int:
        # a column folds at its spaces, never inside a word ("distinct", not "distin/ct")
        return min(full[name], max(MIN_FOLDED, words[name]))

    def width_of(names: Sequence[str]) -> int:
        return _needed([full[c] if c in keep else folded(c) for c in names])

    dropped: list[str] = []
    # The least important columns first, then (a very narrow terminal) from the right.
    order = [*drop_order, *reversed(columns)]
    for name in order:
        if width_of(shown) <= out.width:
            break
        if name in shown and name not in keep:
            shown.remove(name)
            dropped.append(name)
    widths = _fit(shown, {c: full[c] if c in keep else folded(c) for c in shown}, full, out.width)
    table = Table(
        title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False, expand=False
    )
    index = [columns.index(c) for c in shown]
    for name in shown:
        # Fixed widths that add up to the terminal's: rich then has nothing to collapse, and a
        # key column is never cut (rich's last resort shrinks every column alike).
        if name in keep:
            table.add_column(name, no_wrap=True, width=widths[name], overflow="ignore")
        else:
            table.add_column(name, overflow="fold", width=widths[name])
    for row in rows:
        table.add_row(*(Text(_plain(row[i])) for i in index))
    out.print(table)
    if dropped:
        out.print(
            Text(f"({', '.join(dropped)}: not shown at this width; piped or --json lists every column)"),
            style="dim",
        )


__all__ = ["MIN_FOLDED", "print_listing", "write_lines"]
