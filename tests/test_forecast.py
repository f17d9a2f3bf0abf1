"""The forecast arithmetic, on its own: exact limits, budgets, gaps, guards and burn rates.

Pure functions over daily series; the store-backed path is tested in test_targets_year.py.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from core.plans.forecast import Day, Target
from core.plans.projection import evaluate
from core.plans.volume import burn_rates
from core.reference.calendar import WorkingCalendar

CAL = WorkingCalendar.load()  # the shipped calendar: weekends, Tết and the other holidays
LATE = Target("<", 0.02, min_count=30)
ONLINE = Target(">=", 0.3, min_count=30)
ON_TIME_100 = Target(">=", 1.0, min_count=1)


def working_days(start: date, end: date) -> list[date]:
    return [
        start + timedelta(days=i)
        for i in range((end - start).days + 1)
        if CAL.is_working_day(start + timedelta(days=i))
    ]


def steady(start: date, until: date, per_day: int, hits_every: int = 0) -> list[Day]:
    """`per_day` items every working day before `until`; one hit every `hits_every` items."""
    out: list[Day] = []
    n = 0
    for d in working_days(start, until - timedelta(days=1)):
        hits = 0
        for _ in range(per_day):
            n += 1
            hits += bool(hits_every) and n % hits_every == 0
        out.append(Day(d, hits, per_day))
    return out


@pytest.mark.parametrize(
    ("comparator", "threshold", "total", "limit"),
    [
        ("<", 0.02, 5000, 99),  # 100 late of 5,000 is exactly 2%: not under it
        ("<=", 0.02, 5000, 100),
        ("<", 0.02, 5001, 100),
        (">=", 0.3, 5000, 1500),  # not 1,501 because 0.3 × 5,000 = 1500.0000000000002
        (">=", 0.3, 10, 3),
        (">", 0.3, 10, 4),
        (">=", 1.0, 7, 7),
    ],
)
def test_limits_are_exact(comparator: str, threshold: float, total: int, limit: int) -> None:
    t = Target(comparator, threshold, min_count=1)
    assert t.limit(total) == limit
    # The limit is the boundary: it meets, one more (ceiling) or one fewer (floor) does not.
    assert t.meets(limit, total)
    assert not t.meets(limit + 1 if t.ceiling else limit - 1, total)


def test_ceiling_budget_is_counted_in_dossiers_at_the_expected_volume() -> None:
    today = date(2022, 6, 15)
    series = steady(date(2022, 1, 1), today, per_day=20, hits_every=100)  # 1% late
    e = evaluate(LATE, series, today=today, period_end=date(2022, 12, 31), calendar=CAL)
    year_total = 20 * len(working_days(date(2022, 1, 1), date(2022, 12, 31)))
    assert e.forecast.expected_total == pytest.approx(year_total)
    late = sum(d.hits for d in series)
    assert e.numerator == late
    assert e.budget == math.ceil(year_total * 0.02) - 1 - late
    assert e.status == "on_track"
    assert e.forecast.value == pytest.approx(0.01, abs=0.001)
    assert e.forecast.low is not None and e.forecast.high is not None
    assert e.forecast.low < e.forecast.value < e.forecast.high
    assert "ngày làm việc" in e.forecast.method


def test_floor_gap_is_spread_over_the_remaining_working_days() -> None:
    today = date(2022, 10, 3)
    series = steady(date(2022, 1, 1), today, per_day=10, hits_every=5)  # 20% online, target 30%
    e = evaluate(ONLINE, series, today=today, period_end=date(2022, 12, 31), calendar=CAL)
    remaining = len(working_days(today, date(2022, 12, 31)))
    assert e.remaining_working_days == remaining
    n_end = round(e.forecast.expected_total)
    assert n_end == 10 * len(working_days(date(2022, 1, 1), date(2022, 12, 31)))
    assert e.needed == math.ceil(0.3 * n_end) - e.numerator
    assert e.needed_per_working_day == pytest.approx(e.needed / remaining)
    # Reachable (6 of every 10 remaining dossiers online) but not at the current 20%.
    assert e.needed < 10 * remaining
    assert e.status == "at_risk"
    # By December even every remaining dossier online would not be enough.
    later = date(2022, 12, 1)
    lost = evaluate(
        ONLINE,
        steady(date(2022, 1, 1), later, per_day=10, hits_every=5),
        today=later,
        period_end=date(2022, 12, 31),
        calendar=CAL,
    )
    assert lost.status == "missed"


def test_a_month_is_its_own_working_days() -> None:
    # February 2022 holds Tết: from 1/2 to 28/2 only the working days of the calendar count.
    today = date(2022, 2, 1)
    series = steady(date(2022, 1, 1), today, per_day=10)
    e = evaluate(LATE, series, today=today, period_end=date(2022, 2, 28), calendar=CAL)
    feb = working_days(date(2022, 2, 1), date(2022, 2, 28))
    assert len(feb) < 20  # weekends and Tết
    assert e.remaining_working_days == len(feb)


def test_small_volumes_do_not_flap() -> None:
    # One dossier a week, one of them late: 1 of 5 is 20%, far above 2%, yet five dossiers say
    # nothing about a year; the status waits for the plan's minimum count.
    today = date(2022, 2, 7)
    series = [Day(date(2022, 1, 3) + timedelta(weeks=i), int(i == 2), 1) for i in range(5)]
    e = evaluate(LATE, series, today=today, period_end=date(2022, 12, 31), calendar=CAL)
    assert e.status == "insufficient_data"
    assert "ngưỡng 30" in e.reason


def test_pending_items_are_not_failures() -> None:
    # Feedback still inside its answer deadline: not late yet, so 100% remains reachable.
    today = date(2022, 3, 1)
    series = [Day(date(2022, 2, 1), 5, 5), Day(date(2022, 2, 28), 0, 3, pending=3)]
    e = evaluate(ON_TIME_100, series, today=today, period_end=date(2022, 12, 31), calendar=CAL)
    assert e.pending == 3
    assert e.status != "missed"
    # One answered late: a 100% target is lost for the period, whatever comes next.
    late = [*series, Day(date(2022, 2, 15), 0, 1)]
    e = evaluate(ON_TIME_100, late, today=today, period_end=date(2022, 12, 31), calendar=CAL)
    assert e.status == "missed"


def test_not_final_failures_leave_the_target_open() -> None:
    # A dossier not digitised today may be tomorrow: no certain miss before the period ends.
    digitised = Target(">=", 1.0, min_count=1, final_failures=False)
    series = steady(date(2022, 1, 1), date(2022, 3, 1), per_day=10, hits_every=1)
    series.append(Day(date(2022, 3, 1), 9, 10))
    e = evaluate(
        digitised, series, today=date(2022, 3, 2), period_end=date(2022, 12, 31), calendar=CAL
    )
    assert e.status != "missed"
    ended = evaluate(
        digitised, series, today=date(2023, 1, 1), period_end=date(2022, 12, 31), calendar=CAL
    )
    assert ended.status == "missed"


def test_burn_rates_count_complete_working_days_only() -> None:
    # Monday 14/3/2022: the 5-working-day window is Mon 7/3 … Fri 11/3, not the weekend.
    today = date(2022, 3, 14)
    series = steady(date(2022, 1, 1), date(2022, 3, 7), per_day=20)
    week = working_days(date(2022, 3, 7), date(2022, 3, 11))
    series += [Day(d, 2, 20) for d in week]  # 10% late that week
    series.append(Day(today, 20, 20))  # today is still filling: ignored
    rates = burn_rates(series, today, 0.02, (5, 20), CAL)
    assert rates["5wd"] == pytest.approx(0.10 / 0.02)
    assert rates["20wd"] == pytest.approx((10 / 400) / 0.02)
    # Too young a period for a window: no rate rather than a rate over fewer days.
    assert "20wd" not in burn_rates(series[-8:], today, 0.02, (5, 20), CAL)


def test_seasonal_factors_shape_the_expected_volume() -> None:
    today = date(2022, 6, 1)
    series = steady(date(2022, 1, 1), today, per_day=10)
    flat = evaluate(LATE, series, today=today, period_end=date(2022, 12, 31), calendar=CAL)
    busy_december = {m: (2.0 if m == 12 else 1.0) for m in range(1, 13)}
    shaped = evaluate(
        LATE,
        series,
        today=today,
        period_end=date(2022, 12, 31),
        calendar=CAL,
        seasonal=busy_december,
    )
    december = 10 * len(working_days(date(2022, 12, 1), date(2022, 12, 31)))
    assert shaped.forecast.expected_total == pytest.approx(flat.forecast.expected_total + december)
    assert "mùa vụ theo tháng" in shaped.forecast.method
