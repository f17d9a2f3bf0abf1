"""A target's status for one agency and period (TargetStatus, a `target_status` row), and the
periods a target is judged over (core/plans/evaluator.py evaluates them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from core.plans import forecast
from core.plans.model import DateRange, Plan, Target
from core.zone import VN

SCOPE = ""  # agency_code of the row that judges the target's scope as a whole

STATUS_COLUMNS = (
    "evaluated_at",
    "plan",
    "target_id",
    "agency_code",
    "period_start",
    "period_end",
    "metric",
    "comparator",
    "threshold",
    "numerator",
    "denominator",
    "pending",
    "value",
    "status",
    "forecast",
    "forecast_low",
    "forecast_high",
    "expected_denominator",
    "forecast_method",
    "budget",
    "needed",
    "needed_per_working_day",
    "remaining_working_days",
    "burn_rates",
    "data_watermark",
)


@dataclass(frozen=True)
class TargetStatus:
    plan: Plan
    target: Target
    agency: str  # SCOPE for the scope as a whole
    period: DateRange
    threshold: float
    evaluation: forecast.Evaluation
    watermark: datetime | None

    @property
    def key(self) -> tuple[str, str, str, date]:
        return (self.plan.key, self.target.id, self.agency, self.period.start)

    def row(self, evaluated_at: datetime) -> list[Any]:
        e, f, t = self.evaluation, self.evaluation.forecast, self.target
        return [
            evaluated_at,
            self.plan.key,
            t.id,
            self.agency,
            self.period.start,
            self.period.end,
            t.metric,
            t.comparator,
            self.threshold,
            e.numerator,
            e.denominator,
            e.pending,
            e.value,
            e.status,
            f.value,
            f.low,
            f.high,
            f.expected_total,
            f.method,
            e.budget,
            e.needed,
            e.needed_per_working_day,
            e.remaining_working_days,
            e.burn_rates,
            self.watermark or datetime.fromtimestamp(0, VN),
        ]


def periods(plan: Plan, target: Target) -> list[DateRange]:
    """The calendar periods a target is judged over, in order."""
    span = plan.span(target)
    if isinstance(target.period, DateRange):
        return [span]
    months = {"year": 12, "quarter": 3, "month": 1}[target.period]
    out: list[DateRange] = []
    cursor = date(span.start.year, 1, 1)
    while cursor <= span.end:
        month0 = cursor.month - 1 + months
        nxt = date(cursor.year + month0 // 12, month0 % 12 + 1, 1)
        last = nxt - timedelta(days=1)
        if last >= span.start:
            out.append(DateRange(start=max(cursor, span.start), end=min(last, span.end)))
        cursor = nxt
    return out


def due_periods(plan: Plan, target: Target, today: date) -> list[DateRange]:
    """What to evaluate today: the period under way and the one that ended last (its final
    status), or, once the plan is over, its last period."""
    chosen = [p for p in periods(plan, target) if p.start <= today]
    return chosen[-2:] if chosen and chosen[-1].end >= today else chosen[-1:]


def burn_windows(plan: Plan) -> list[int]:
    return sorted({w for b in plan.burn_alerts for w in b.windows})
