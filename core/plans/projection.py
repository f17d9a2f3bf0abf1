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
from datetime import date, timedelta

from core.plans.forecast import (
    DEFAULT_POLICY,
    Z80,
    Day,
    Evaluation,
    Forecast,
    Policy,
    Status,
    Target,
)
from core.plans.volume import Calendar, Volume, burn_rates, normal_cdf, volume, working_days


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
        vol = Volume(0.0, 0.0, 0.0, 0.0, working_days(today, period_end, calendar), False)
    else:
        vol = volume(series, today, period_end, calendar, policy, seasonal)
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
            probability = normal_cdf(margin / sd_margin)
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
    vol: Volume,
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
    target: Target, hits: int, total: int, pending: int, failures: int, vol: Volume
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


def _method(vol: Volume, ended: bool, policy: Policy | None) -> str:
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
