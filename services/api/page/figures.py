"""The page's figures, read through the very functions the JSON routes answer with.

`metric_result_with_months` is GET /v1/metrics/{metric} with and without `group_by=month` (the
same SQL, grouped once by both), and `evaluate_index766` is GET /v1/index766: the page adds no
SQL of its own for figures. A unit with children is shown with its whole subtree, as
`?agency=X` answers by default; that is the sum of its subtree's `group_by=agency` rows, because
every figure is a numerator and a denominator that reconcile across groups (README).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from services.api.deps import ApiContext
from services.api.routes.index766 import Index766Evaluation, evaluate_index766
from services.api.routes.metrics import metric_result_with_months
from services.api.schemas import MetricResult
from services.metrics.queries import VN, Read
from services.reference import memo
from services.reference.org_tree import OrgTree
from services.storage.pool import run_all

# The four rates the issue asks every agency to be judged on, in the order they are shown.
PAGE_METRICS: tuple[str, ...] = (
    "on_time_rate",
    "online_share",
    "online_payment_share",
    "feedback_answered_on_time",
)


@dataclass(frozen=True)
class Count:
    numerator: int = 0
    denominator: int = 0

    @property
    def rate(self) -> float | None:
        # The API's own definition (MetricRow.rate): no denominator, no rate.
        return self.numerator / self.denominator if self.denominator else None

    @staticmethod
    def total(counts: Iterable[Count]) -> Count:
        parts = list(counts)
        return Count(sum(c.numerator for c in parts), sum(c.denominator for c in parts))


@dataclass(frozen=True)
class Year:
    """Whole days of one calendar year in Asia/Ho_Chi_Minh, cut at today for the current year."""

    year: int
    first: date
    last: date

    @classmethod
    def of(cls, year: int, now: datetime) -> Year | None:
        """None for a year that has not started: there is nothing to show for it."""
        today = now.astimezone(VN).date()
        if year > today.year:
            return None
        return cls(year, date(year, 1, 1), min(date(year, 12, 31), today))


@dataclass(frozen=True)
class Provenance:
    judged_at: datetime
    watermark: datetime | None
    rule_set: str
    org_tree: str


def _by_group(result: MetricResult) -> dict[str, Count]:
    return {str(g.group): Count(g.numerator, g.denominator) for g in result.groups if g.group}


def _provenance(results: Iterable[MetricResult]) -> Provenance:
    listed = list(results)
    marks = [r.provenance.watermark for r in listed if r.provenance.watermark]
    first = listed[0]
    return Provenance(
        first.judged_at,
        max(marks, default=None),
        first.provenance.rule_set,
        first.provenance.org_tree,
    )


@dataclass(frozen=True)
class ProvinceFigures:
    year: Year
    tree: OrgTree
    own: dict[str, dict[str, Count]]  # metric → agency code → its own items (group_by=agency)
    monthly: dict[str, dict[str, Count]]  # metric → first day of month (ISO) → count
    index_total: dict[str, Any]  # one result of GET /v1/index766
    index_by_agency: dict[str, dict[str, Any]]  # agency code → result of ?group_by=agency
    provenance: Provenance

    def units(self) -> list[str]:
        """Every agency with a figure, or with children that have: the API's own list."""
        codes = set(self.index_by_agency)
        for per_agency in self.own.values():
            codes |= set(per_agency)
        return sorted(codes)

    def rolled_up(self, metric: str, code: str) -> Count:
        """The unit with its subtree, equal to GET /v1/metrics/{metric}?agency=code."""
        members = self.tree.descendants(code) if code in self.tree else {code}
        own = self.own[metric]
        return Count.total(own[c] for c in members if c in own)

    def province(self, metric: str) -> Count:
        """Every agency, equal to GET /v1/metrics/{metric} with no agency filter."""
        return Count.total(self.own[metric].values())


def _read_all(
    ctx: ApiContext,
    year: Year,
    group_by: Literal["agency"] | None,
    agency: list[str] | None = None,
) -> tuple[list[tuple[MetricResult, MetricResult]], Index766Evaluation]:
    """Per page metric, GET /v1/metrics/{metric} grouped by `group_by` and by month (both from
    one read: metric_result_with_months), and the index (GET /v1/index766), side by side on the
    API's client pool, not one after another. All of them read one state of the store: how far
    it is folded, and the reference data."""
    with memo.one_view():
        read = Read.of(ctx.clickhouse, None)
        calls: list[Callable[[], Any]] = [
            functools.partial(
                metric_result_with_months,
                ctx,
                metric,
                year.first,
                year.last,
                agency=agency,
                group_by=group_by,
                read=read,
            )
            for metric in PAGE_METRICS
        ]
        calls.append(
            functools.partial(
                evaluate_index766, ctx, year.first, year.last, agency=agency, read=read
            )
        )
        done: list[Any] = run_all(ctx.clickhouse, calls)
    return done[:-1], done[-1]


def province_figures(ctx: ApiContext, year: Year) -> ProvinceFigures:
    own: dict[str, dict[str, Count]] = {}
    monthly: dict[str, dict[str, Count]] = {}
    results: list[MetricResult] = []
    pairs, index = _read_all(ctx, year, "agency")
    for metric, (by_agency, by_month) in zip(PAGE_METRICS, pairs, strict=True):
        own[metric], monthly[metric] = _by_group(by_agency), _by_group(by_month)
        results += [by_agency, by_month]
    return ProvinceFigures(
        year=year,
        tree=index.scope.tree,
        own=own,
        monthly=monthly,
        index_total=index.total(),
        index_by_agency={str(r["agency"]): r for r in index.by_agency()},
        provenance=_provenance(results),
    )


@dataclass(frozen=True)
class AgencyFigures:
    year: Year
    code: str
    tree: OrgTree
    totals: dict[str, Count]  # metric → GET /v1/metrics/{metric}?agency=code
    monthly: dict[str, dict[str, Count]]
    index: dict[str, Any]  # GET /v1/index766?agency=code
    provenance: Provenance

    @property
    def has_data(self) -> bool:
        return any(c.denominator for c in self.totals.values()) or bool(self.index["events"])


def agency_figures(ctx: ApiContext, year: Year, code: str) -> AgencyFigures:
    totals: dict[str, Count] = {}
    monthly: dict[str, dict[str, Count]] = {}
    results: list[MetricResult] = []
    pairs, index = _read_all(ctx, year, None, agency=[code])
    for metric, (whole, by_month) in zip(PAGE_METRICS, pairs, strict=True):
        group = whole.groups[0] if whole.groups else None
        totals[metric] = Count(group.numerator, group.denominator) if group else Count()
        monthly[metric] = _by_group(by_month)
        results += [whole, by_month]
    return AgencyFigures(
        year=year,
        code=code,
        tree=index.scope.tree,
        totals=totals,
        monthly=monthly,
        index=index.total(),
        provenance=_provenance(results),
    )
