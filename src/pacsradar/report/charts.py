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
    name: str
    legend: str
    color: str
    points: str  # "x,y x,y ..." for <polyline>
    dots: tuple[tuple[float, float, int], ...]


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    series: tuple[Series, ...]
    labels: tuple[tuple[float, str], ...]
    max_value: int
    empty: bool


def trend_chart(points: Sequence[TrendPoint], *, width: int = 640, height: int = 200) -> TrendChart:
    """Open findings and exposed patients per scan, on one shared axis each normalised."""
    left, right, top, bottom = 70, 70, 16, 36
    plot_w = width - left - right
    plot_h = height - top - bottom
    n = len(points)

    def xs(i: int) -> float:
        return round(left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), 1)

    def make(name: str, color: str, values: list[int]) -> Series:
        top_value = max([*values, 1])
        coords = [(xs(i), round(top + plot_h - plot_h * v / top_value, 1), v) for i, v in enumerate(values)]
        return Series(
            name=name,
            legend=f"{name} (latest {values[-1]:,})" if values else name,
            color=color,
            points=" ".join(f"{x},{y}" for x, y, _ in coords),
            dots=tuple(coords),
        )

    findings = [p.findings.total for p in points]
    patients = [p.exposure.patients for p in points]
    step = max(1, n // 8)
    labels = tuple(
        (xs(i), p.started_at.strftime("%Y-%m-%d %H:%M")) for i, p in enumerate(points) if i % step == 0
    )
    return TrendChart(
        width=width,
        height=height,
        series=(
            make("findings", "#dc2626", findings),
            make("patients exposed", "#2563eb", patients),
        ),
        labels=labels,
        max_value=max([*findings, *patients, 0]),
        empty=n == 0,
    )


__all__ = ["SEVERITY_COLORS", "BarChart", "TrendChart", "severity_chart", "trend_chart"]
