"""Geometry of the inline SVG charts (no script, no network): numbers only, labels escaped later."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pacsradar.models import Severity
from pacsradar.store.views import SeverityCounts, TrendPoint

SEVERITY_COLORS = {
    Severity.CRITICAL: "#7f1d1d",
    Severity.HIGH: "#dc2626",
    Severity.MEDIUM: "#f59e0b",
    Severity.LOW: "#2563eb",
    Severity.INFO: "#6b7280",
}
SEVERITIES_WORST_FIRST: tuple[Severity, ...] = tuple(sorted(Severity, key=lambda s: -s.rank))


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: float
    color: str


@dataclass(frozen=True)
class BarChart:
    bars: tuple[Bar, ...]
    width: int
    height: int
    max_value: int


def severity_chart(counts: SeverityCounts, *, width: int = 420, bar_height: int = 22) -> BarChart:
    max_value = max([counts.get(s) for s in Severity] + [1])
    plot = width - 150
    bars = tuple(
        Bar(
            label=s.value,
            value=counts.get(s),
            y=i * (bar_height + 6),
            width=round(plot * counts.get(s) / max_value, 1),
            color=SEVERITY_COLORS[s],
        )
        for i, s in enumerate(SEVERITIES_WORST_FIRST)
    )
    return BarChart(bars=bars, width=width, height=len(bars) * (bar_height + 6), max_value=max_value)


@dataclass(frozen=True)
class Series:
    """One small chart of the trend: its own scale, labelled, inside its own band of the SVG."""

    name: str
    legend: str
    color: str
    points: str  # "x,y x,y ..." for <polyline>
    dots: tuple[tuple[float, float, int], ...]
    #: top and bottom of this series' band, and its axis labels (value text, y)
    top: int
    bottom: int
    ticks: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    series: tuple[Series, ...]
    #: the shared time axis: (x, label, text-anchor)
    labels: tuple[tuple[float, str, str], ...]
    left: int
    right: int
    max_value: int
    empty: bool


def _nice_max(value: int) -> int:
    """The axis top: 1, 2, 5 x 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    base = 1
    while True:
        for m in (1, 2, 5):
            if m * base >= value:
                return m * base
        base *= 10


def trend_chart(points: Sequence[TrendPoint], *, width: int = 560, band: int = 82) -> TrendChart:
    """Open findings and exposed patients per scan: two small charts on one shared time axis.

    Each series has its own labelled scale (0 and a rounded top), so neither hides the other,
    and every mark and label stays inside the viewBox (the first and last dates are anchored
    inwards).
    """
    left, right, gap, title_h, axis_h = 44, 16, 14, 16, 22
    plot_w = width - left - right
    n = len(points)

    def xs(i: int) -> float:
        return round(left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), 1)

    def make(index: int, name: str, color: str, values: list[int]) -> Series:
        top = index * (band + gap) + title_h
        bottom = top + band - title_h
        # Headroom, so the newest value never sits on the series' title.
        top_value = _nice_max(-(-max([*values, 1]) * 115 // 100))
        plot_h = bottom - top
        coords = [(xs(i), round(bottom - plot_h * v / top_value, 1), v) for i, v in enumerate(values)]
        return Series(
            name=name,
            legend=f"{name}: latest {values[-1]:,}" if values else name,
            color=color,
            points=" ".join(f"{x},{y}" for x, y, _ in coords),
            dots=tuple(coords),
            top=top,
            bottom=bottom,
            ticks=((f"{top_value:,}", float(top)), ("0", float(bottom))),
        )

    findings = [p.findings.total for p in points]
    patients = [p.exposure.patients for p in points]
    series = (
        make(0, "Open findings", "#dc2626", findings),
        make(1, "Distinct patients exposed", "#2563eb", patients),
    )
    height = series[-1].bottom + axis_h
    step = max(1, -(-n // 6))
    shown = [i for i in range(n) if i % step == 0]
    if n and shown[-1] != n - 1:
        if n - 1 - shown[-1] < step / 2 and len(shown) > 1:
            shown.pop()
        shown.append(n - 1)
    labels = tuple(
        (
            xs(i),
            points[i].started_at.strftime("%Y-%m-%d"),
            "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle",
        )
        for i in shown
    )
    return TrendChart(
        width=width,
        height=height,
        series=series,
        labels=labels,
        left=left,
        right=right,
        max_value=max([*findings, *patients, 0]),
        empty=n == 0,
    )


__all__ = ["SEVERITY_COLORS", "BarChart", "TrendChart", "severity_chart", "trend_chart"]
