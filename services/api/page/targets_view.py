"""The plans' targets as the page shows them: the plan's words, the threshold, and where the
scope and each agency stand in the latest period evaluated."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from core.figures.definitions import METRICS
from core.plans.forecast import STATUS_LABELS
from core.plans.model import DateRange, Plan, Target
from services.api.page import format as fmt
from services.api.page.targets import STATUS_ORDER, Status, TargetStatuses

NO_EVALUATION = "Chưa có đánh giá"
_PERIOD_KINDS = {"year": "Hằng năm", "quarter": "Hằng quý", "month": "Hằng tháng"}


@dataclass(frozen=True)
class StatusCell:
    status: str  # css class suffix: met, on_track, at_risk, missed, insufficient_data, none
    label: str
    value: str  # the figure judged, e.g. "1,43%"
    period: str  # e.g. "Năm 2022", "Quý 3/2023"
    name: str = ""  # the agency, in lists of agencies
    href: str = ""


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


@dataclass(frozen=True)
class StatusGroup:
    """The agencies in one status, for one target's latest period: a badge once per status,
    not once per agency (most of the page's bytes were repeated badges: issue 15)."""

    status: str
    label: str
    cells: tuple[StatusCell, ...]


@dataclass(frozen=True)
class TargetRow:
    clause: str
    text: str
    measure: str  # the metric's label
    requirement: str  # "< 2%"
    period_kind: str
    in_charge: str
    scope: StatusCell | None  # the scope as a whole, latest period
    counts: tuple[StatusCount, ...]  # agencies by status, latest period
    agencies: tuple[StatusCell, ...]
    by_status: tuple[StatusGroup, ...]  # the same agencies, worst status first
    agencies_period: str  # the latest period, the same for every agency listed


@dataclass(frozen=True)
class PlanView:
    key: str
    title: str
    document: str
    valid: str
    illustrative: bool  # and the plan's own words do not say so already
    targets: tuple[TargetRow, ...]
    unmeasurable: int


def measure(target: Target) -> str:
    if target.indicator is not None:
        return f"Chỉ số 766, chỉ tiêu {target.indicator}"
    metric = METRICS.get(target.metric)
    return metric.label if metric else target.metric


def is_minutes(target: Target) -> bool:
    metric = METRICS.get(target.metric)
    return metric is not None and metric.unit == "minutes"


def _month_end(year: int, month: int) -> date:
    return (date(year, month, 28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def period_text(start: date, end: date) -> str:
    """A period as people name it: "Năm 2022", "Quý 3/2023", "Tháng 5/2023", else the days."""
    if start.day == 1 and start.year == end.year:
        if start.month == 1 and end == date(start.year, 12, 31):
            return f"Năm {start.year}"
        if start.month % 3 == 1 and end == _month_end(start.year, start.month + 2):
            return f"Quý {(start.month + 2) // 3}/{start.year}"
        if end == _month_end(start.year, start.month):
            return f"Tháng {start.month}/{start.year}"
    return f"{fmt.day(start)}–{fmt.day(end)}"


def value_text(target: Target, value: float) -> str:
    """A target's figure in its unit: minutes, or a share as a percentage."""
    if is_minutes(target):
        return fmt.decimal(value, 0) + " phút"
    return fmt.percent(value)


def decided_value(s: Status) -> float | None:
    """The status's figure over its decided items only. The stored value divides by every item,
    so feedback still within its answer deadline read as failures (issue 15); the status itself
    already sets them aside (core/plans/forecast.py)."""
    if not s.pending:
        return s.value
    decided = s.denominator - s.pending
    return s.numerator / decided if decided > 0 else None


def status_cell(target: Target, s: Status, name: str = "", href: str = "") -> StatusCell:
    value = decided_value(s)
    shown = fmt.DASH if value is None else value_text(target, value)
    if s.pending:
        shown += f" (không tính {fmt.number(s.pending)} chưa đến hạn)"
    return StatusCell(
        s.status, s.label, shown, period_text(s.period_start, s.period_end), name, href
    )


def latest_period(rows: list[Status]) -> list[Status]:
    if not rows:
        return []
    newest = max(s.period_start for s in rows)
    return [s for s in rows if s.period_start == newest]


def target_row(
    item: TargetStatuses, name: Callable[[str], str], href: Callable[[str], str]
) -> TargetRow:
    target = item.target
    scope = latest_period(item.scope)
    agencies = latest_period(item.agencies)
    tally = Counter(s.status for s in agencies)
    cells = sorted(
        (status_cell(target, s, name(s.agency_code), href(s.agency_code)) for s in agencies),
        key=lambda c: (STATUS_ORDER.index(c.status) if c.status in STATUS_ORDER else 9, c.name),
    )
    return TargetRow(
        clause=target.clause,
        text=target.text,
        measure=measure(target),
        requirement=fmt.requirement(
            target.comparator, target.threshold, minutes=is_minutes(target)
        ),
        period_kind=(
            _PERIOD_KINDS[target.period]
            if isinstance(target.period, str)
            else period_text(target.period.start, target.period.end)
        ),
        in_charge=name(target.in_charge),
        scope=status_cell(target, scope[0]) if scope else None,
        counts=tuple(
            StatusCount(st, STATUS_LABELS[st], tally[st]) for st in STATUS_ORDER if tally[st]
        ),
        agencies=tuple(cells),
        by_status=tuple(
            StatusGroup(st, STATUS_LABELS.get(st, st), tuple(c for c in cells if c.status == st))
            for st in dict.fromkeys(c.status for c in cells)
        ),
        agencies_period=cells[0].period if cells else "",
    )


def plan_views(
    items: list[TargetStatuses], name: Callable[[str], str], href: Callable[[str], str]
) -> tuple[PlanView, ...]:
    by_plan: dict[str, tuple[Plan, list[TargetRow]]] = {}
    for item in items:
        entry = by_plan.setdefault(item.plan.key, (item.plan, []))
        entry[1].append(target_row(item, name, href))
    return tuple(
        PlanView(
            key=plan.key,
            title=plan.title,
            document=plan.document,
            valid=_valid(plan.valid),
            illustrative=plan.illustrative and not _says_illustrative(plan),
            targets=tuple(rows),
            unmeasurable=len(plan.unmeasurable),
        )
        for plan, rows in by_plan.values()
    )


def _says_illustrative(plan: Plan) -> bool:
    """Whether the plan's document or title already calls it an example: "(ví dụ minh họa)"
    after "Ví dụ minh họa, không có số hiệu" said it twice (issue 15)."""
    words = unicodedata.normalize("NFC", f"{plan.document} {plan.title}").casefold()
    return "minh họa" in words or "minh hoạ" in words


def _valid(valid: DateRange) -> str:
    return period_text(valid.start, valid.end)


@dataclass(frozen=True)
class OtherPlan:
    document: str
    valid: str
    year: int


def other_plans(plans: Mapping[str, Plan], shown: set[str]) -> tuple[OtherPlan, ...]:
    """Plans not in force in the year shown, so a reader can find the year they apply to."""
    return tuple(
        OtherPlan(p.document, _valid(p.valid), p.valid.start.year)
        for p in sorted(plans.values(), key=lambda p: p.valid.start)
        if p.key not in shown
    )
