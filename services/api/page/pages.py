"""The two pages' view models: the province scorecard and one agency's page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.figures.definitions import METRICS
from core.plans.model import Plan
from services.api.page import format as fmt
from services.api.page.figures import PAGE_METRICS, AgencyFigures, ProvinceFigures, Year
from services.api.page.targets import Status, targets_in_year
from services.api.page.targets_view import (
    OtherPlan,
    PlanView,
    StatusCell,
    is_minutes,
    other_plans,
    plan_views,
    status_cell,
)
from services.api.page.view import (
    SHORT_LABELS,
    AgencyRow,
    CompletenessMark,
    Figure,
    Footer,
    IndexView,
    LevelGroup,
    MetricCard,
    MonthRow,
    agency_href,
    cards,
    index_points,
    level_groups,
    name_of,
    trend_rows,
)

FIRST_YEAR = 2022  # the first plan (KH 7860/KH-UBND) and the first reference records


@dataclass(frozen=True)
class YearLink:
    year: int
    href: str
    current: bool


@dataclass(frozen=True)
class Common:
    year: int
    home: str  # the province page of the same year
    period: str  # "01/01/2026 – 28/11/2026"
    years: tuple[YearLink, ...]
    footer: Footer
    short_labels: tuple[str, ...]
    full_labels: tuple[str, ...]


def common(year: Year, this_year: int, path: str, footer: Footer) -> Common:
    years = tuple(
        YearLink(y, path if y == this_year else f"{path}?nam={y}", y == year.year)
        for y in range(this_year, min(FIRST_YEAR, year.year) - 1, -1)
    )
    return Common(
        year=year.year,
        home="/" if year.year == this_year else f"/?nam={year.year}",
        period=f"{fmt.day(year.first)} – {fmt.day(year.last)}",
        years=years,
        footer=footer,
        short_labels=tuple(SHORT_LABELS[m] for m in PAGE_METRICS),
        full_labels=tuple(METRICS[m].label for m in PAGE_METRICS),
    )


@dataclass(frozen=True)
class ProvincePage:
    common: Common
    cards: tuple[MetricCard, ...]
    index: IndexView
    total: AgencyRow
    levels: tuple[LevelGroup, ...]
    months: tuple[MonthRow, ...]
    plans: tuple[PlanView, ...]
    other_plans: tuple[OtherPlan, ...]
    completeness: CompletenessMark  # the province's figures (the cards and the total row)

    @property
    def marks_children(self) -> bool:
        """Whether a row carries the "*" the footnote explains: no footnote without one."""
        return any(r.has_children for g in self.levels for r in g.rows)

    @property
    def marks_incomplete(self) -> bool:
        """Whether a row carries the incompleteness mark the footnote explains."""
        return any(r.completeness.incomplete for g in self.levels for r in g.rows)


def province_page(
    figures: ProvinceFigures, plans: Mapping[str, Plan], statuses: list[Status], this_year: int
) -> ProvincePage:
    year, tree = figures.year, figures.tree

    def href(code: str) -> str:
        return agency_href(code, year, this_year)

    totals = {m: figures.province(m) for m in PAGE_METRICS}
    total = AgencyRow(
        "",
        "Toàn tỉnh",
        "",
        tuple(Figure.of(m, totals[m]) for m in PAGE_METRICS),
        fmt.points(index_points(figures.index_total)),
        False,
    )
    rows = []
    for code in figures.units():
        if code in tree and tree.parent(code) is None:
            continue  # the province itself: the "Toàn tỉnh" row stands for it
        row = AgencyRow(
            code,
            name_of(tree, code),
            href(code),
            tuple(Figure.of(m, figures.rolled_up(m, code)) for m in PAGE_METRICS),
            fmt.points(index_points(figures.index_by_agency.get(code))),
            code in tree and bool(tree.children(code)),
            CompletenessMark.of(figures.completeness_of(code)),
        )
        rows.append((tree.level(code) if code in tree else "", row))
    targets = targets_in_year(plans, statuses, year.first, year.last)
    shown = plan_views(targets, lambda c: name_of(tree, c), href)
    return ProvincePage(
        common=common(year, this_year, "/", Footer.of(figures.provenance)),
        cards=cards(year, totals, figures.monthly),
        index=IndexView.of(figures.index_total),
        total=total,
        levels=level_groups(rows),
        months=trend_rows(year, figures.monthly),
        plans=shown,
        other_plans=other_plans(plans, {p.key for p in shown}),
        completeness=CompletenessMark.of(figures.completeness.total()),
    )


@dataclass(frozen=True)
class Crumb:
    name: str
    href: str


@dataclass(frozen=True)
class AgencyTarget:
    plan: str
    clause: str
    text: str
    requirement: str
    cell: StatusCell


@dataclass(frozen=True)
class AgencyPage:
    common: Common
    code: str
    name: str
    level: str
    path: tuple[Crumb, ...]  # the units above it, root first
    children: tuple[Crumb, ...]
    cards: tuple[MetricCard, ...]
    index: IndexView
    months: tuple[MonthRow, ...]
    targets: tuple[AgencyTarget, ...]
    completeness: CompletenessMark


def agency_page(
    figures: AgencyFigures, plans: Mapping[str, Plan], statuses: list[Status], this_year: int
) -> AgencyPage:
    year, tree, code = figures.year, figures.tree, figures.code

    def crumb(c: str) -> Crumb:
        return Crumb(name_of(tree, c), agency_href(c, year, this_year))

    known = code in tree
    targets = []
    for item in targets_in_year(plans, statuses, year.first, year.last):
        for s in sorted(item.agencies, key=lambda s: s.period_start, reverse=True):
            cell = status_cell(item.target, s)
            requirement = fmt.requirement(
                item.target.comparator, s.threshold, minutes=is_minutes(item.target)
            )
            targets.append(
                AgencyTarget(
                    item.plan.document, item.target.clause, item.target.text, requirement, cell
                )
            )
    return AgencyPage(
        common=common(year, this_year, f"/co-quan/{code}", Footer.of(figures.provenance)),
        code=code,
        name=name_of(tree, code),
        level=_level_name(tree.level(code)) if known else "",
        path=tuple(crumb(c) for c in tree.path(code)[:-1]) if known else (),
        children=tuple(crumb(c) for c in tree.children(code)) if known else (),
        cards=cards(year, figures.totals, figures.monthly),
        index=IndexView.of(figures.index),
        months=trend_rows(year, figures.monthly),
        targets=tuple(targets),
        completeness=CompletenessMark.of(figures.completeness),
    )


def _level_name(level: str) -> str:
    return {"province": "Cấp tỉnh", "district": "Cấp huyện", "commune": "Cấp xã"}.get(level, "")
