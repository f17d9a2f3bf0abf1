"""Where a target will stand at the end of its period: pure arithmetic over a daily series.

The series holds, for every day of the period up to today, the items that entered the figure's
population that day (by the metric's anchor: finished, received, paid, filed…), how many of them
are in the numerator, and how many are not decided yet (a feedback item still within its answer
deadline). Nothing here reads the store.

Method (stated with every forecast, so a reader can check it):
- Volume: the mean number of items per working day and per non-working day over the last
  `window` complete days, from the working-day calendar (a month is its own days, holidays
  count as non-working), times a seasonal factor per month when a full previous year of the same
  scope is known. Today counts as partly observed.
- Rate: the share of numerator items among decided items over the same window, shrunk towards
  the period-to-date share (`prior_strength` pseudo-items), so that one odd week does not swing
  the forecast.
- Uncertainty: a normal approximation of the binomial outcome of the undecided and future items,
  widened by the rate's own uncertainty and by the daily volume's dispersion; the interval is
  the central 80%.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Literal, Protocol

Status = Literal["met", "on_track", "at_risk", "missed", "insufficient_data"]
STATUSES: tuple[Status, ...] = ("met", "on_track", "at_risk", "missed", "insufficient_data")
STATUS_LABELS: dict[str, str] = {
    "met": "Đạt",
    "on_track": "Đúng tiến độ",
    "at_risk": "Có nguy cơ không đạt",
    "missed": "Không đạt",
    "insufficient_data": "Chưa đủ số liệu",
}
Z80 = 1.2815515655446004  # two-sided 80%: the interval reported with every forecast


@dataclass(frozen=True)
class Day:
    day: date
    hits: int  # items in the numerator
    total: int  # items in the population
    pending: int = 0  # items not decided yet (neither in the numerator nor finally out)


@dataclass(frozen=True)
class Policy:
    """How a forecast becomes a status; configurable per deployment (core/plans/model.py
    carries the plan's own `min_count`)."""

    window: int = 28  # days of recent history the volume and rate come from
    prior_strength: float = 20.0  # pseudo-items of period-to-date rate the recent rate starts from
    on_track_probability: float = 0.7  # below this chance of meeting the target: at risk


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Forecast:
    value: float | None  # expected value at the period's end
    low: float | None  # 80% interval
    high: float | None
    expected_total: float  # expected population at the period's end
    probability: float | None  # chance of meeting the target, under the forecast
    method: str


@dataclass(frozen=True)
class Evaluation:
    numerator: int
    denominator: int
    pending: int
    value: float | None
    status: Status
    forecast: Forecast
    remaining_working_days: int
    budget: int | None = None  # ceilings: numerator items still affordable at expected volume
    needed: int | None = None  # floors: numerator items still needed at expected volume
    needed_per_working_day: float | None = None
    burn_rates: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why this status, in one Vietnamese sentence


@dataclass(frozen=True)
class Target:
    """What evaluate() needs of a plan target (core.plans.model.Target has more)."""

    comparator: str
    threshold: float
    min_count: int
    # Whether a decided item can still change within the period (False for a dossier not yet
    # digitised: it may be tomorrow); only final failures make a miss certain before the end.
    final_failures: bool = True

    @property
    def ceiling(self) -> bool:
        return self.comparator in ("<", "<=")

    def meets(self, hits: float, total: float) -> bool:
        if total <= 0:
            return False
        return _compare(self.comparator, Fraction(hits) / Fraction(total), _exact(self.threshold))

    def limit(self, total: int) -> int:
        """Ceilings: the most numerator items `total` items may hold and still meet the target.
        Floors: the fewest they must hold. Exact (30% of 5,000 is 1,500, not 1,500.0000001)."""
        t = _exact(self.threshold) * total
        match self.comparator:
            case "<":
                return math.ceil(t) - 1
            case "<=":
                return math.floor(t)
            case ">=":
                return math.ceil(t)
            case ">":
                return math.floor(t) + 1
            case _:  # "==": the floor side; a plan never asks for exact equality of a rate
                return math.ceil(t)


def _exact(threshold: float) -> Fraction:
    return Fraction(repr(threshold))


def _compare(comparator: str, a: Fraction, b: Fraction) -> bool:
    return {
        "<": a < b,
        "<=": a <= b,
        ">=": a >= b,
        ">": a > b,
        "==": a == b,
    }[comparator]


class Calendar(Protocol):
    def is_working_day(self, d: date, /) -> bool: ...


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class _Volume:
    remaining: float
    variance: float
    working_rate: float
    other_rate: float
    remaining_working_days: int
    seasonal: bool


def _volume(
    series: Sequence[Day],
    today: date,
    period_end: date,
    calendar: Calendar,
    policy: Policy,
    seasonal: Mapping[int, float] | None,
) -> _Volume:
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
    return _Volume(remaining, dispersion * remaining, w_rate, o_rate, working_days, bool(seasonal))


def _working_days(today: date, period_end: date, calendar: Calendar) -> int:
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


def evaluate(
    target: Target,
    series: Sequence[Day],
    *,
    today: date,
    period_end: date,
    calendar: Calendar,
    policy: Policy | None = None,
    seasonal: Mapping[int, float] | None = None,
    burn_windows: Sequence[int] = (),
    forecastable: bool = True,
) -> Evaluation:
    """The status of one target for one scope on `today` (a day of the period, or after it)."""
    policy = policy or DEFAULT_POLICY
    hits = sum(d.hits for d in series)
    total = sum(d.total for d in series)
    pending = sum(d.pending for d in series)
    failures = total - hits - pending  # decided and out of the numerator
    value = hits / total if total else None
    ended = today > period_end
    if ended or not forecastable:
        # A stock figure or a catalogue indicator: judged on its current value, no volume ahead.
        vol = _Volume(0.0, 0.0, 0.0, 0.0, _working_days(today, period_end, calendar), False)
    else:
        vol = _volume(series, today, period_end, calendar, policy, seasonal)
    burns = burn_rates(
        series, min(today, period_end + timedelta(days=1)), target.threshold, burn_windows, calendar
    )
    if target.ceiling is False:
        burns = {}

    # The rate of numerator items among the undecided and future items.
    decided = total - pending
    ptd = hits / decided if decided else None
    start = min(today, period_end + timedelta(days=1)) - timedelta(days=policy.window)
    recent = [d for d in series if d.day >= start]
    r_hits = sum(d.hits for d in recent)
    r_decided = sum(d.total - d.pending for d in recent)
    if ptd is None:
        p = None
        p_var = 0.0
    else:
        k = policy.prior_strength
        p = (r_hits + k * ptd) / (r_decided + k)
        p_var = p * (1 - p) / (r_decided + k + 1)

    undecided = vol.remaining + pending  # items whose outcome is still to come
    expected_total = total + vol.remaining
    n_end = round(expected_total)
    if p is None or expected_total <= 0:
        method = "Chưa có mục nào được quyết định: chưa dự báo."
        forecast = Forecast(value, value, value, expected_total, None, method)
    else:
        mean_hits = hits + undecided * p
        var_hits = undecided * p * (1 - p) + undecided**2 * p_var
        f = mean_hits / expected_total
        var_f = (var_hits + (p - f) ** 2 * vol.variance) / expected_total**2
        sd_f = math.sqrt(max(var_f, 0.0))
        # P(meet): the margin in items, hits − threshold × total, is approximately normal.
        thr = target.threshold
        margin = mean_hits - thr * expected_total
        sd_margin = math.sqrt(max(var_hits + (p - thr) ** 2 * vol.variance, 0.0))
        if target.ceiling:
            margin = -margin
        if sd_margin > 0:
            probability = _normal_cdf(margin / sd_margin)
        else:
            probability = 1.0 if target.meets(mean_hits, expected_total) else 0.0
        forecast = Forecast(
            f,
            max(0.0, f - Z80 * sd_f),
            min(1.0, f + Z80 * sd_f),
            expected_total,
            probability,
            _method(vol, ended, policy if forecastable else None),
        )

    budget = needed = None
    per_day = None
    if n_end > 0:
        limit = target.limit(n_end)
        if target.ceiling:
            budget = limit - hits
        else:
            needed = max(0, limit - hits)
            if vol.remaining_working_days:
                per_day = needed / vol.remaining_working_days

    status, reason = _status(target, ended, hits, total, pending, failures, vol, forecast, policy)
    return Evaluation(
        numerator=hits,
        denominator=total,
        pending=pending,
        value=value,
        status=status,
        forecast=forecast,
        remaining_working_days=vol.remaining_working_days,
        budget=budget,
        needed=needed,
        needed_per_working_day=per_day,
        burn_rates=burns,
        reason=reason,
    )


def _status(
    target: Target,
    ended: bool,
    hits: int,
    total: int,
    pending: int,
    failures: int,
    vol: _Volume,
    forecast: Forecast,
    policy: Policy,
) -> tuple[Status, str]:
    if ended:
        if total == 0 or (
            total < target.min_count
            and not _certain_miss(target, hits, total, pending, failures, vol)
        ):
            return (
                "insufficient_data",
                f"Kỳ đã kết thúc với {total} mục, dưới ngưỡng {target.min_count}.",
            )
        if target.meets(hits, total):
            return "met", "Kỳ đã kết thúc: đạt chỉ tiêu."
        return "missed", "Kỳ đã kết thúc: không đạt chỉ tiêu."
    if target.final_failures and _certain_miss(target, hits, total, pending, failures, vol):
        return (
            "missed",
            "Dù các hồ sơ còn lại đều đạt, chỉ tiêu không thể đạt ở khối lượng dự kiến.",
        )
    if total < target.min_count:
        return "insufficient_data", f"Mới có {total} mục, dưới ngưỡng {target.min_count}."
    p = forecast.probability
    if p is None:
        return "insufficient_data", "Chưa có mục nào được quyết định."
    if p >= policy.on_track_probability:
        return "on_track", f"Khả năng đạt chỉ tiêu theo dự báo: {p:.0%}."
    return "at_risk", f"Khả năng đạt chỉ tiêu theo dự báo chỉ {p:.0%}."


def _certain_miss(
    target: Target, hits: int, total: int, pending: int, failures: int, vol: _Volume
) -> bool:
    """Whether the target is out of reach even in the best case: every undecided and future item
    goes the right way, at the high end (90%) of the expected volume."""
    future = vol.remaining + Z80 * math.sqrt(vol.variance)
    if target.ceiling:
        return hits > 0 and not target.meets(hits, total + future)
    if failures <= 0:
        return False
    best_total = total + future
    return not target.meets(hits + pending + future, best_total)


def _method(vol: _Volume, ended: bool, policy: Policy | None) -> str:
    if ended:
        return "Kỳ đã kết thúc: giá trị cuối kỳ."
    if policy is None:
        return "Không dự báo (chỉ tiêu tồn hoặc chỉ tiêu danh mục): đánh giá theo giá trị hiện tại."
    season = "có hệ số mùa vụ theo tháng của năm trước" if vol.seasonal else "không hệ số mùa vụ"
    return (
        f"Khối lượng: trung bình {vol.working_rate:.1f} mục/ngày làm việc và "
        f"{vol.other_rate:.1f} mục/ngày nghỉ trong {policy.window} ngày gần nhất, theo lịch ngày "
        f"làm việc, {season}; còn {vol.remaining_working_days} ngày làm việc. Tỷ lệ: "
        f"{policy.window} ngày gần nhất, co về tỷ lệ từ đầu kỳ ({policy.prior_strength:g} mục). "
        "Khoảng tin cậy 80% theo xấp xỉ chuẩn."
    )
