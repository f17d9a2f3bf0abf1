"""View models: the figures arranged and formatted for the templates, which only lay them out.

Everything a template prints is already a string here, so the formatting rules live in one
place (format.py) and the templates carry no arithmetic.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from core.figures.completeness import Completeness
from core.figures.definitions import METRICS
from core.reference.org_tree import OrgTree
from services.api.page import format as fmt
from services.api.page.figures import PAGE_METRICS, Count, Provenance, Year
from services.api.page.sparkline import Sparkline, sparkline

# Short column headings for a phone-wide table; the full label is in each heading's title and
# in the cards above the table.
SHORT_LABELS = {
    "on_time_rate": "Đúng hạn",
    "online_share": "Nộp trực tuyến",
    "online_payment_share": "Thanh toán trực tuyến",
    "feedback_answered_on_time": "PAKN trả lời đúng hạn",
}
# What the denominator counts, so "2.918/3.005" says what it is a share of.
NOUNS = {
    "on_time_rate": "hồ sơ đã giải quyết",
    "online_share": "hồ sơ tiếp nhận",
    "online_payment_share": "hồ sơ có thanh toán",
    # undecided items (still within their answer deadline) are left out: figures.decided_feedback
    "feedback_answered_on_time": "PAKN đã trả lời hoặc đã quá hạn",
}
# Which of the two readings of "answered on time" the page's figure is (issue 15): said beside it.
FEEDBACK_NOTE = (
    "Không tính PAKN chưa trả lời còn trong thời hạn trả lời: chưa biết đúng hạn hay quá hạn. "
    "Khác chỉ tiêu 5.2 của Chỉ số 766, vốn tính các PAKN này là đạt."
)
LEVELS = {
    "province": "Sở, ban, ngành",
    "district": "UBND cấp huyện",
    "commune": "UBND cấp xã",
}
OTHER_LEVEL = "Đơn vị chưa có trong danh mục cơ quan"


@dataclass(frozen=True)
class Figure:
    rate: str  # "97,10%"
    counts: str  # "2.918/3.005"
    title: str  # the counts in words, for a tooltip
    undecided: str  # "218 PAKN còn trong hạn, chưa tính", or ""

    @classmethod
    def of(cls, metric: str, count: Count) -> Figure:
        counts = f"{fmt.number(count.numerator)}/{fmt.number(count.denominator)}"
        undecided = (
            f"{fmt.number(count.undecided)} PAKN còn trong hạn, chưa tính"
            if count.undecided
            else ""
        )
        title = f"{counts} {NOUNS[metric]}" + (f"; {undecided}" if undecided else "")
        return cls(fmt.percent(count.rate), counts, title, undecided)


@dataclass(frozen=True)
class CompletenessMark:
    """Whether a figure's population is known to lack part of the source's dossiers (issue 18),
    and the sentence that says so; a complete or unknown one carries no mark and looks as
    before."""

    incomplete: bool
    text: str  # "" when complete or unknown
    threshold: str  # "99,00%": MOTCUA_COMPLETENESS_THRESHOLD, for the footnote

    @classmethod
    def of(cls, c: Completeness) -> CompletenessMark:
        threshold = fmt.percent(c.threshold)
        if not c.incomplete:
            return cls(False, "", threshold)
        text = (
            f"Dữ liệu chưa đầy đủ: hệ thống nguồn báo {fmt.number(c.reported)} hồ sơ, "
            f"đã nhận {fmt.number(c.held)} ({fmt.percent(c.share)}), dưới ngưỡng {threshold}"
        )
        if c.days_without_manifest:
            text += (
                f"; {fmt.number(c.days_without_manifest)} ngày chưa có bảng kê cuối ngày của "
                "hệ thống nguồn"
            )
        return cls(True, text + ". Các số liệu chỉ tính trên hồ sơ đã nhận.", threshold)


NO_MARK = CompletenessMark(False, "", "")


@dataclass(frozen=True)
class MetricCard:
    metric: str
    label: str
    noun: str
    figure: Figure
    reference_target: str | None  # the catalogue's target for the metric, e.g. "≥ 30%"
    trend: Sparkline
    trend_caption: str
    note: str  # how the figure is counted, where a reader could take it otherwise


@dataclass(frozen=True)
class IndexGroup:
    label: str
    points: str
    max_points: int
    not_assessed: int


def index_points(result: dict[str, Any] | None) -> float | None:
    """The index's total, or None for a scope with no dossier or feedback counted: the
    catalogue and the no-feedback rules alone would score a year without data (issue 15: 2025
    showed 22,6/100 beside "chưa có số liệu")."""
    return None if result is None else result["points_with_data"]


@dataclass(frozen=True)
class IndexView:
    total: str
    not_assessed: str
    groups: tuple[IndexGroup, ...]
    has_data: bool

    @classmethod
    def of(cls, result: dict[str, Any]) -> IndexView:
        total = index_points(result)
        groups = tuple(
            IndexGroup(
                g["label"],
                fmt.points(g["points"] if total is not None else None),
                g["max_points"],
                g["not_assessed_points"],
            )
            for g in result["groups"]
        )
        # how many points the data cannot assess: a whole number of indicators' maxima
        not_assessed = fmt.decimal(result["not_assessed_points"], 2)
        return cls(fmt.points(total), not_assessed, groups, total is not None)


@dataclass(frozen=True)
class AgencyRow:
    code: str
    name: str
    href: str
    figures: tuple[Figure, ...]
    index: str  # 766 points
    has_children: bool
    completeness: CompletenessMark = NO_MARK


@dataclass(frozen=True)
class LevelGroup:
    label: str
    rows: tuple[AgencyRow, ...]


@dataclass(frozen=True)
class MonthRow:
    label: str
    figures: tuple[Figure, ...]


def agency_href(code: str, year: Year, current_year: int) -> str:
    query = "" if year.year == current_year else f"?nam={year.year}"
    return f"/co-quan/{code}{query}"


def months(year: Year) -> list[date]:
    return [date(year.year, m, 1) for m in range(1, year.last.month + 1)]


def trend_rows(year: Year, monthly: dict[str, dict[str, Count]]) -> tuple[MonthRow, ...]:
    """Months with at least one item; a run of empty months says nothing a reader needs (the
    sparklines still span the whole year)."""
    rows = []
    for first in months(year):
        counts = [monthly[m].get(first.isoformat(), Count()) for m in PAGE_METRICS]
        if any(c.denominator for c in counts):
            figures = tuple(Figure.of(m, c) for m, c in zip(PAGE_METRICS, counts, strict=True))
            rows.append(MonthRow(fmt.month_label(first), figures))
    return tuple(rows)


def cards(
    year: Year, totals: dict[str, Count], monthly: dict[str, dict[str, Count]]
) -> tuple[MetricCard, ...]:
    out = []
    for metric in PAGE_METRICS:
        rates = [monthly[metric].get(m.isoformat(), Count()).rate for m in months(year)]
        line = sparkline(rates)
        caption = (
            f"Theo tháng, trục từ {fmt.percent(line.low)} đến {fmt.percent(line.high)}"
            if line.low is not None
            else "Chưa có số liệu theo tháng"
        )
        out.append(
            MetricCard(
                metric,
                METRICS[metric].label,
                NOUNS[metric],
                Figure.of(metric, totals[metric]),
                METRICS[metric].target,
                line,
                caption,
                FEEDBACK_NOTE if metric == "feedback_answered_on_time" else "",
            )
        )
    return tuple(out)


def sort_key(name: str) -> str:
    """Vietnamese names in alphabetical order near enough for a list: diacritics ignored."""
    bare = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in bare if not unicodedata.combining(c)).casefold()


def name_of(tree: OrgTree, code: str) -> str:
    return tree.name(code) if code in tree else code


def level_groups(rows: list[tuple[str, AgencyRow]]) -> tuple[LevelGroup, ...]:
    """Rows (level, row) grouped by level in the order of LEVELS, then the unknown codes."""
    order = [*LEVELS, ""]
    groups = []
    for level in order:
        mine = sorted((r for lv, r in rows if lv == level), key=lambda r: sort_key(r.name))
        if mine:
            groups.append(LevelGroup(LEVELS.get(level, OTHER_LEVEL), tuple(mine)))
    return tuple(groups)


@dataclass(frozen=True)
class Footer:
    updated: str  # the newest ingest time behind the figures
    rule_set: str
    org_tree: str

    @classmethod
    def of(cls, provenance: Provenance) -> Footer:
        mark = provenance.watermark
        updated = f"số liệu đến {fmt.moment(mark)}" if mark else "chưa có số liệu"
        return cls(updated, provenance.rule_set, provenance.org_tree)
