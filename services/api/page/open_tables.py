"""The scorecard as open data: the numbers the page shows, with their counts, as JSON rows and as
CSV cells, drawn from the very Scorecard the page is rendered from (page/scorecard.py).

Rates are percentages with two decimals, beside the numerator and denominator they come from
(the page rounds the same counts to one decimal); 766 points have two decimals, as the index
computes them. Item-level data (which dossier, which feedback) is not here: it stays behind a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.figures.definitions import METRICS
from core.figures.index766_scores import GROUPS
from core.plans.forecast import STATUS_LABELS
from services.api.page.figures import FEEDBACK, PAGE_METRICS, Count
from services.api.page.scorecard import Scorecard
from services.api.page.view import NOUNS, SHORT_LABELS, index_points, months

TITLES = {
    "figures": "Số liệu theo cơ quan",
    "monthly": "Toàn tỉnh theo tháng",
    "index766": "Chỉ số 766 theo cơ quan",
    "targets": "Mục tiêu kế hoạch và tình trạng",
}
FEEDBACK_DEFINITION = (
    "PAKN tiếp nhận trong kỳ đã trả lời không muộn hơn thời hạn / PAKN tiếp nhận trong kỳ đã trả "
    "lời hoặc đã quá thời hạn mà chưa trả lời. PAKN chưa trả lời còn trong thời hạn chưa biết "
    "đúng hạn hay quá hạn nên không tính (undecided). Khác chỉ tiêu 5.2 của Chỉ số 766, vốn tính "
    "các PAKN này là đạt. Tính từ feedback_answered_on_time, feedback_answered_late và "
    "feedback_open_overdue của /v1/metrics."
)
_LEVELS = {"province": "Cấp tỉnh", "district": "Cấp huyện", "commune": "Cấp xã"}


@dataclass(frozen=True)
class Table:
    rows: list[dict[str, Any]]  # the JSON rows
    headings: tuple[str, ...]  # the CSV's
    cells: list[list[Any]]


def percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _count(c: Count) -> dict[str, Any]:
    return {
        "numerator": c.numerator,
        "denominator": c.denominator,
        "percent": percent(c.rate),
        "undecided": c.undecided,
    }


def _count_headings() -> tuple[str, ...]:
    out: list[str] = []
    for m in PAGE_METRICS:
        short = SHORT_LABELS[m]
        out += [f"{short}: tử số", f"{short}: mẫu số ({NOUNS[m]})", f"{short}: tỷ lệ (%)"]
        if m == FEEDBACK:
            out.append(f"{short}: PAKN còn trong hạn, chưa tính")
    return tuple(out)


def _count_cells(counts: dict[str, Count]) -> list[Any]:
    out: list[Any] = []
    for m in PAGE_METRICS:
        c = counts[m]
        out += [c.numerator, c.denominator, percent(c.rate)]
        if m == FEEDBACK:
            out.append(c.undecided)
    return out


_STATUS_DESCRIPTIONS = {
    "met": "Kỳ đã kết thúc và đạt yêu cầu.",
    "on_track": "Kỳ chưa kết thúc; theo dự báo cuối kỳ, nhiều khả năng đạt yêu cầu.",
    "at_risk": "Kỳ chưa kết thúc; theo dự báo cuối kỳ, khả năng đạt yêu cầu thấp.",
    "missed": "Kỳ đã kết thúc mà không đạt, hoặc không thể đạt nữa dù các mục còn lại đều đạt.",
    "insufficient_data": "Chưa đủ số mục để đánh giá.",
}
_INDEX_TOTAL = (
    "Tổng điểm Chỉ số 766 (QĐ 766/QĐ-TTg) trên 100; null khi chưa có hồ sơ hay PAKN nào trong "
    "kỳ. Chỉ tiêu không đủ dữ liệu không tính là 0: số điểm của chúng ở not_assessed_points."
)


def definitions(name: str) -> list[dict[str, Any]]:
    """What each figure of the table `name` means: the page's figures as GET /v1/metrics
    defines them (the feedback figure: as the page arranges it), the 766 groups, the statuses."""
    if name == "index766":
        groups = [
            {"id": gid, "label": label, "description": f"Nhóm chỉ số, tối đa {points} điểm."}
            for gid, (label, points) in GROUPS.items()
        ]
        return [{"id": "total", "label": "Chỉ số 766", "description": _INDEX_TOTAL}, *groups]
    if name == "targets":
        return [
            {"id": status, "label": label, "description": _STATUS_DESCRIPTIONS.get(status, "")}
            for status, label in STATUS_LABELS.items()
        ]
    return [
        {
            "id": m,
            "label": METRICS[m].label,
            "description": FEEDBACK_DEFINITION if m == FEEDBACK else METRICS[m].description,
            "target": METRICS[m].target,
        }
        for m in PAGE_METRICS
    ]


@dataclass(frozen=True)
class _Unit:
    code: str | None  # None: the province as a whole
    name: str
    level: str | None
    includes_children: bool


def _units(card: Scorecard) -> list[_Unit]:
    """The page's rows in the page's order: the province, then each level's agencies."""
    tree, page = card.figures.tree, card.page
    out = [_Unit(None, page.total.name, None, False)]
    for group in page.levels:
        for row in group.rows:
            level = tree.level(row.code) if row.code in tree else None
            out.append(_Unit(row.code, row.name, level, row.has_children))
    return out


def _counts_of(card: Scorecard, unit: _Unit) -> dict[str, Count]:
    f = card.figures
    if unit.code is None:
        return {m: f.province(m) for m in PAGE_METRICS}
    return {m: f.rolled_up(m, unit.code) for m in PAGE_METRICS}


def _index_of(card: Scorecard, unit: _Unit) -> dict[str, Any] | None:
    f = card.figures
    return f.index_total if unit.code is None else f.index_by_agency.get(unit.code)


def _points(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def figures_table(card: Scorecard) -> Table:
    rows, cells = [], []
    for u in _units(card):
        counts = _counts_of(card, u)
        points = _points(index_points(_index_of(card, u)))
        rows.append(
            {
                "agency_code": u.code,
                "name": u.name,
                "level": u.level,
                "includes_children": u.includes_children,
                "figures": {m: _count(counts[m]) for m in PAGE_METRICS},
                "index766_points": points,
            }
        )
        level = _LEVELS.get(u.level or "", "")
        cells.append(
            [u.code or "", u.name, level, "có" if u.includes_children else ""]
            + _count_cells(counts)
            + [points]
        )
    headings = ("Mã cơ quan", "Tên cơ quan", "Cấp", "Gồm đơn vị trực thuộc", *_count_headings())
    return Table(rows, (*headings, "Điểm 766 (/100)"), cells)


def monthly_table(card: Scorecard) -> Table:
    rows, cells = [], []
    for first in months(card.year):
        key = first.isoformat()
        counts = {m: card.figures.monthly[m].get(key, Count()) for m in PAGE_METRICS}
        rows.append({"month": key[:7], "figures": {m: _count(counts[m]) for m in PAGE_METRICS}})
        cells.append([key[:7], *_count_cells(counts)])
    return Table(rows, ("Tháng", *_count_headings()), cells)


def index766_table(card: Scorecard) -> Table:
    rows, cells = [], []
    labels: list[str] = []
    for u in _units(card):
        result = _index_of(card, u)
        if result is None:
            continue  # a unit with figures but none the index counts
        total = index_points(result)
        groups = [
            {
                "group": g["group"],
                "label": g["label"],
                "points": _points(g["points"]) if total is not None else None,
                "max_points": g["max_points"],
                "not_assessed_points": g["not_assessed_points"],
            }
            for g in result["groups"]
        ]
        labels = labels or [f"{g['label']} (/{g['max_points']})" for g in groups]
        rows.append(
            {
                "agency_code": u.code,
                "name": u.name,
                "total_points": _points(total),
                "max_points": 100,
                "not_assessed_points": result["not_assessed_points"],
                "groups": groups,
            }
        )
        cells.append(
            [u.code or "", u.name, _points(total), result["not_assessed_points"]]
            + [g["points"] for g in groups]
        )
    headings = ("Mã cơ quan", "Tên cơ quan", "Tổng điểm (/100)", "Điểm chưa đánh giá")
    return Table(rows, (*headings, *labels), cells)


TABLES: dict[str, Callable[[Scorecard], Table]] = {
    "figures": figures_table,
    "monthly": monthly_table,
    "index766": index766_table,
}
