"""Inline SVG sparklines: a year's monthly rates as a few hundred bytes of markup, so the trend
shows on a phone, in print and without JavaScript."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 120, 32, 3
# Rates move by a few points a month: a full 0–100% axis would draw every trend flat, so the
# axis spans the data, but never less than 10 points, so noise is not drawn as a cliff.
MIN_SPAN = 0.10


@dataclass(frozen=True)
class Sparkline:
    segments: tuple[str, ...]  # SVG polyline `points`, one per run of months with a value
    last: tuple[float, float] | None  # the latest point, drawn as a dot
    dots: tuple[tuple[float, float], ...]  # months with no neighbour: a one-point line is invisible
    low: float | None  # the axis range, stated in the caption so the scale is not hidden
    high: float | None
    width: int = WIDTH
    height: int = HEIGHT


def _axis(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < MIN_SPAN:
        middle = (low + high) / 2
        low, high = middle - MIN_SPAN / 2, middle + MIN_SPAN / 2
        # Keep the axis inside 0–100% by sliding it, not by shrinking it.
        if low < 0:
            low, high = 0.0, MIN_SPAN
        elif high > 1:
            low, high = 1 - MIN_SPAN, 1.0
    return low, high


def sparkline(rates: list[float | None]) -> Sparkline:
    """One point per month in order; None (no items that month) breaks the line."""
    present = [r for r in rates if r is not None]
    if not present:
        return Sparkline((), None, (), None, None)
    low, high = _axis(present)
    step = (WIDTH - 2 * PAD) / max(len(rates) - 1, 1)
    segments: list[str] = []
    dots: list[tuple[float, float]] = []
    run: list[tuple[float, float]] = []

    def close() -> None:
        if len(run) > 1:
            segments.append(" ".join(f"{x},{y}" for x, y in run))
        elif run:
            dots.append(run[0])
        run.clear()

    last: tuple[float, float] | None = None
    for i, rate in enumerate(rates):
        if rate is None:
            close()
            continue
        x = PAD + i * step if len(rates) > 1 else WIDTH / 2
        y = PAD + (high - rate) / (high - low) * (HEIGHT - 2 * PAD)
        run.append((round(x, 1), round(y, 1)))
        last = run[-1]
    close()
    return Sparkline(tuple(segments), last, tuple(dots), low, high)
