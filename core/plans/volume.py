"""The volume ahead of a target's period from its daily series and the working-day calendar
(core/plans/projection.py), and the burn rates of a ceiling."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from core.plans.forecast import Day, Policy


class Calendar(Protocol):
    def is_working_day(self, d: date, /) -> bool: ...


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class Volume:
    remaining: float
    variance: float
    working_rate: float
    other_rate: float
    remaining_working_days: int
    seasonal: bool


def volume(
    series: Sequence[Day],
    today: date,
    period_end: date,
    calendar: Calendar,
    policy: Policy,
    seasonal: Mapping[int, float] | None,
) -> Volume:
    by_day = {d.day: d.total for d in series}
    first = min(by_day, default=today)
    window = [today - timedelta(days=i) for i in range(1, policy.window + 1)]
    window = [d for d in window if d >= first]
    work = [by_day.get(d, 0) for d in window if calendar.is_working_day(d)]
    other = [by_day.get(d, 0) for d in window if not calendar.is_working_day(d)]
    w_rate = sum(work) / len(work) if work else 0.0
    o_rate = sum(other) / len(other) if other else 0.0
    # Dispersion of working-day volume (Poisson → 1); never below 1: counts are at least that noisy.
    dispersion = 1.0
    if len(work) > 1 and w_rate > 0:
        var = sum((x - w_rate) ** 2 for x in work) / (len(work) - 1)
        dispersion = max(1.0, var / w_rate)
    factor_now = 1.0
    if seasonal:
        months = [d.month for d in window] or [today.month]
        factor_now = sum(seasonal.get(m, 1.0) for m in months) / len(months) or 1.0
    remaining = 0.0
    working_days = 0
    cursor = today
    while cursor <= period_end:
        working = calendar.is_working_day(cursor)
        working_days += working
        rate = w_rate if working else o_rate
        if seasonal:
            rate *= seasonal.get(cursor.month, 1.0) / factor_now
        if cursor == today:  # partly observed: expect only what the day has not brought yet
            rate = max(0.0, rate - by_day.get(today, 0))
        remaining += rate
        cursor += timedelta(days=1)
    return Volume(remaining, dispersion * remaining, w_rate, o_rate, working_days, bool(seasonal))


def working_days(today: date, period_end: date, calendar: Calendar) -> int:
    days = (period_end - today).days + 1
    return sum(calendar.is_working_day(today + timedelta(days=i)) for i in range(max(days, 0)))


def burn_rates(
    series: Sequence[Day],
    today: date,
    threshold: float,
    windows: Sequence[int],
    calendar: Calendar,
) -> dict[str, float]:
    """For ceilings: the share of numerator items over the last `w` complete working days
    (before today; today is still filling), divided by the threshold. 1 spends the budget exactly
    as fast as the period allows. Working days, because weekends and holidays bring no dossiers: a
    Monday-morning window of calendar days would be empty."""
    out: dict[str, float] = {}
    if not windows or threshold <= 0:
        return out
    days: list[date] = []
    cursor = today - timedelta(days=1)
    first = min((d.day for d in series), default=today)
    while len(days) < max(windows) and cursor >= first:
        if calendar.is_working_day(cursor):
            days.append(cursor)
        cursor -= timedelta(days=1)
    by_day = {d.day: d for d in series}
    for w in windows:
        chosen = [by_day[d] for d in days[:w] if d in by_day]
        if len(days) < w:
            continue  # the period is younger than the window
        hits = sum(d.hits for d in chosen)
        total = sum(d.total - d.pending for d in chosen)
        if total > 0:
            out[f"{w}wd"] = round(hits / total / threshold, 6)
    return out
