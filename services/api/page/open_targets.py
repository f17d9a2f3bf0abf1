"""The plans' targets as open data: every target of the year's plans, the scope and each agency
in the latest period evaluated, as the page lists them (page/targets_view.py), or one row saying
it has no evaluation yet, so that nothing silently disappears."""

from __future__ import annotations

from typing import Any

from services.api.page import format as fmt
from services.api.page.open_tables import Table, percent
from services.api.page.scorecard import Scorecard
from services.api.page.targets import Status, targets_in_year
from services.api.page.targets_view import (
    NO_EVALUATION,
    decided_value,
    is_minutes,
    latest_period,
    measure,
)
from services.api.page.view import name_of

SCOPE_NAME = "Toàn phạm vi mục tiêu"

_TARGET_HEADINGS = (
    "Kế hoạch",
    "Văn bản",
    "Ví dụ minh họa",
    "Mục",
    "Mục tiêu",
    "Đo bằng",
    "Yêu cầu",
    "Kỳ từ",
    "Kỳ đến",
    "Mã cơ quan",
    "Tên cơ quan",
    "Trạng thái",
    "Tử số",
    "Mẫu số",
    "Chưa đến hạn, chưa tính",
    "Giá trị",
    "Đơn vị",
    "Đánh giá lúc",
)


def targets_table(card: Scorecard) -> Table:
    """Each target of the year's plans with its statuses: the scope and every agency in the
    latest period evaluated (as the page lists them); none when it has no evaluation yet (the
    CSV then has one row saying so)."""
    tree = card.figures.tree
    rows: list[dict[str, Any]] = []
    cells: list[list[Any]] = []
    first, last = card.year.first, card.year.last
    for item in targets_in_year(card.plans, card.statuses, first, last):
        plan, target = item.plan, item.target
        unit = "minutes" if is_minutes(target) else "percent"
        words = [
            plan.key,
            plan.document,
            "có" if plan.illustrative else "",
            target.clause,
            target.text,
            measure(target),
            fmt.requirement(target.comparator, target.threshold, minutes=unit == "minutes"),
        ]
        statuses = [
            _status(s, unit, name_of(tree, s.agency_code) if s.agency_code else SCOPE_NAME)
            for s in latest_period(item.scope) + latest_period(item.agencies)
        ]
        rows.append(
            {
                "plan": plan.key,
                "document": plan.document,
                "illustrative": plan.illustrative,
                "clause": target.clause,
                "target_id": target.id,
                "text": target.text,
                "measure": words[5],
                "metric": target.metric,
                "requirement": words[6],
                "unit": unit,
                "statuses": statuses,
            }
        )
        cells += [[*words, *_status_cells(s, unit)] for s in statuses] or [
            [*words, *[""] * 4, NO_EVALUATION, *[""] * 6]
        ]
    return Table(rows, _TARGET_HEADINGS, cells)


def _status(s: Status, unit: str, name: str) -> dict[str, Any]:
    value = decided_value(s)
    if value is not None and unit == "percent":
        value = percent(value)
    return {
        "period_from": s.period_start,
        "period_to": s.period_end,
        "agency_code": s.agency_code or None,
        "name": name,
        "status": s.status,
        "status_label": s.label,
        "numerator": s.numerator,
        "denominator": s.denominator,
        "undecided": s.pending,
        "value": None if value is None else round(value, 2),
        "evaluated_at": s.evaluated_at,
    }


def _status_cells(r: dict[str, Any], unit: str) -> list[Any]:
    moment = r["evaluated_at"]
    return [
        r["period_from"].isoformat(),
        r["period_to"].isoformat(),
        r["agency_code"] or "",
        r["name"],
        r["status_label"],
        r["numerator"],
        r["denominator"],
        r["undecided"],
        r["value"],
        "%" if unit == "percent" else "phút",
        "" if moment is None else moment.isoformat(),
    ]
