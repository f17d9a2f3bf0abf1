"""The plan targets' latest statuses as one table, for GET /v1/targets?format=csv|xlsx: the sheet
the provincial office attaches to its periodic report on the plan.

One row per target, agency and period, in the words the public page uses (services/api/page):
the plan's text and clause, what measures it, the requirement as the plan writes it, the value,
status, forecast, error budget and what is still needed. A target with no evaluation yet gets one
row saying so, so that nothing silently disappears from the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from core.plans.model import Plan, Target
from core.zone import VN
from services.api.page import format as fmt
from services.api.page.targets_view import is_minutes, measure, period_text, value_text

HEADINGS = (
    "Kế hoạch",
    "Mục",
    "Mục tiêu",
    "Đo bằng",
    "Yêu cầu",
    "Cơ quan chủ trì",
    "Cơ quan",
    "Tên cơ quan",
    "Kỳ",
    "Tử số",
    "Mẫu số",
    "Giá trị",
    "Trạng thái",
    "Dự báo cuối kỳ",
    "Còn được trễ (hồ sơ)",
    "Cần thêm (hồ sơ)",
    "Cần mỗi ngày làm việc",
    "Đánh giá lúc",
)
NOT_EVALUATED = "Chưa có đánh giá"


def _value(target: Target, value: float | None) -> str:
    return "" if value is None else value_text(target, value)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _moment(value: datetime | None) -> str:
    return "" if value is None else f"{value.astimezone(VN):%d/%m/%Y %H:%M}"


def rows(
    selected: Sequence[tuple[Plan, Target, Sequence[dict[str, Any]]]],
    name_of: Callable[[str, date], str],
) -> list[list[Any]]:
    """`selected`: each target with its latest status rows as GET /v1/targets answers them;
    `name_of(code, day)`: an agency's name in the org tree valid that day ("" if unknown)."""
    out: list[list[Any]] = []
    for plan, target, statuses in selected:
        words = [
            plan.key,
            target.clause,
            target.text,
            measure(target),
            fmt.requirement(target.comparator, target.threshold, minutes=is_minutes(target)),
            target.in_charge,
        ]
        if not statuses:
            out.append([*words, "", "", "", "", "", "", NOT_EVALUATED, "", "", "", "", ""])
            continue
        for s in statuses:
            period = s["period"]
            out.append(
                [
                    *words,
                    s["agency_code"] or "Toàn phạm vi",
                    name_of(s["agency_code"], period["to"]) if s["agency_code"] else "",
                    period_text(period["from"], period["to"]),
                    s["numerator"],
                    s["denominator"],
                    _value(target, s["value"]),
                    s["status_label"],
                    _value(target, s["forecast"]["value"]),
                    s["budget"],
                    s["needed"],
                    _round(s["needed_per_working_day"]),
                    _moment(s["evaluated_at"]),
                ]
            )
    return out
