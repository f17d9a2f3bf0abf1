"""The page's figures, read through the very functions the JSON routes answer with.

`metric_result_with_months` is GET /v1/metrics/{metric} with and without `group_by=month` (the
same SQL, grouped once by both), and `evaluate_index766` is GET /v1/index766, both built in
services/api/answers below the routes and the page: the page adds no SQL of its own for figures.
A unit with children is shown with its whole subtree, as `?agency=X` answers by default; that is
the sum of its subtree's `group_by=agency` rows, because every figure is a numerator and a
denominator that reconcile across groups (README).

One figure is arranged, not only read: the feedback answered on time leaves out the items still
within their answer deadline (decided_feedback), which the API's answer counts as `undecided`.

The completeness of the figures' population (issue 18) is read once for the whole page, per
agency (services/api/completeness.py), beside the figures: a row or a card sums its agencies'.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from core.figures.completeness import Completeness, ScopeCompleteness
from core.figures.reads import Read
from core.figures.scope import resolve
from core.reference import memo
from core.reference.org_tree import OrgTree
from core.storage.pool import run_all
from core.zone import VN
from services.api.answers.index766 import Index766Evaluation, evaluate_index766
from services.api.answers.metrics import metric_result_with_months
from services.api.completeness import scope_completeness
from services.api.deps import ApiContext
from services.api.schemas import MetricResult

# The four rates the issue asks every agency to be judged on, in the order they are shown.
PAGE_METRICS: tuple[str, ...] = (
    "on_time_rate",
    "online_share",
    "online_payment_share",
    "feedback_answered_on_time",
)
FEEDBACK = "feedback_answered_on_time"


@dataclass(frozen=True)
class Count:
    numerator: int = 0
    denominator: int = 0
    # Items whose outcome is not decided yet (feedback still within its answer deadline): in
    # neither the numerator nor the denominator, so they count neither as a success nor as a
    # failure.
    undecided: int = 0

    @property
    def rate(self) -> float | None:
        # The API's own definition (MetricRow.rate): no denominator, no rate.
        return self.numerator / self.denominator if self.denominator else None

    @staticmethod
    def total(counts: Iterable[Count]) -> Count:
        parts = list(counts)
        return Count(
            sum(c.numerator for c in parts),
            sum(c.denominator for c in parts),
            sum(c.undecided for c in parts),
        )


def decided_feedback(filed: dict[str, Count]) -> dict[str, Count]:
    """Feedback answered on time over feedback whose outcome is known, per group: answered (on
    time or late) or past its deadline unanswered. GET /v1/metrics/feedback_answered_on_time
    divides by every item filed, so a month of items still within their 15 working days read
    0% (issue 15: December, 0 of 218); its `undecided` items are set aside."""
    return {
        group: Count(c.numerator, c.denominator - c.undecided, c.undecided)
        for group, c in filed.items()
    }


# The oldest year the page (?nam=) and the open data (?year=) answer for: one cache entry per
# year, so the range bounds them.
OLDEST_YEAR = 2000


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
    calendar: str


def _provenance(results: Iterable[MetricResult]) -> Provenance:
    listed = list(results)
    marks = [r.provenance.watermark for r in listed if r.provenance.watermark]
    first = listed[0]
    return Provenance(
        first.judged_at,
        max(marks, default=None),
        first.provenance.rule_set,
        first.provenance.org_tree,
        first.provenance.calendar,
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
    catalog: str  # the procedure catalogue's version the index was scored with
    completeness: ScopeCompleteness  # every agency's, for the year's ended days

    def units(self) -> list[str]:
        """Every agency with a figure, or with children that have: the API's own list."""
        codes = set(self.index_by_agency)
        for per_agency in self.own.values():
            codes |= set(per_agency)
        return sorted(codes)

    def rolled_up(self, metric: str, code: str) -> Count:
        """The unit with its subtree, equal to GET /v1/metrics/{metric}?agency=code (for the
        feedback figure, to decided_feedback of that answer)."""
        members = self.tree.descendants(code) if code in self.tree else {code}
        own = self.own[metric]
        return Count.total(own[c] for c in members if c in own)

    def province(self, metric: str) -> Count:
        """Every agency, equal to GET /v1/metrics/{metric} with no agency filter."""
        return Count.total(self.own[metric].values())

    def completeness_of(self, code: str) -> Completeness:
        """The unit with its subtree, as GET /v1/metrics/{metric}?agency=code's provenance."""
        return self.completeness.of(self.tree.descendants(code) if code in self.tree else {code})


def _by_group(result: MetricResult) -> dict[str, Count]:
    """Counts per group; the one group of an ungrouped answer under ""."""
    return {
        str(g.group or ""): Count(g.numerator, g.denominator, g.undecided or 0)
        for g in result.groups
    }


def _completeness(ctx: ApiContext, year: Year, agency: list[str] | None) -> ScopeCompleteness:
    """The population's completeness over the year's ended days, per agency of the scope (the
    agency with its subtree, as the figures count it; every agency for the province)."""
    agencies = resolve(ctx.clickhouse, tuple(agency or ()), year.last).agencies
    return scope_completeness(ctx, year.first, year.last, agencies, ctx.clock())


def _read_all(
    ctx: ApiContext,
    year: Year,
    group_by: Literal["agency"] | None,
    agency: list[str] | None = None,
) -> tuple[list[tuple[MetricResult, MetricResult]], Index766Evaluation, ScopeCompleteness]:
    """Per metric read, GET /v1/metrics/{metric} grouped by `group_by` and by month (both from
    one read: metric_result_with_months), the index (GET /v1/index766) and the population's
    completeness, side by side on the API's client pool, not one after another. All of them
    read one state of the store: how far it is folded, and the reference data."""
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
        calls.append(functools.partial(_completeness, ctx, year, agency))
        done: list[Any] = run_all(ctx.clickhouse, calls)
    return done[:-2], done[-2], done[-1]


@dataclass(frozen=True)
class _Read:
    grouped: dict[str, dict[str, Count]]  # metric → group → count (PAGE_METRICS only)
    monthly: dict[str, dict[str, Count]]  # metric → first day of month (ISO) → count
    index: Index766Evaluation
    provenance: Provenance
    completeness: ScopeCompleteness


def _read(
    ctx: ApiContext, year: Year, group_by: Literal["agency"] | None, agency: list[str] | None
) -> _Read:
    pairs, index, completeness = _read_all(ctx, year, group_by, agency)
    grouped: dict[str, dict[str, Count]] = {}
    monthly: dict[str, dict[str, Count]] = {}
    results: list[MetricResult] = []
    for metric, (whole, by_month) in zip(PAGE_METRICS, pairs, strict=True):
        grouped[metric], monthly[metric] = _by_group(whole), _by_group(by_month)
        results += [whole, by_month]
    for counts in (grouped, monthly):
        counts[FEEDBACK] = decided_feedback(counts[FEEDBACK])
    return _Read(grouped, monthly, index, _provenance(results), completeness)


def province_figures(ctx: ApiContext, year: Year) -> ProvinceFigures:
    read = _read(ctx, year, "agency", None)
    return ProvinceFigures(
        year=year,
        tree=read.index.scope.tree,
        own=read.grouped,
        monthly=read.monthly,
        index_total=read.index.total(),
        index_by_agency={str(r["agency"]): r for r in read.index.by_agency()},
        provenance=read.provenance,
        catalog=read.index.catalog.version,
        completeness=read.completeness,
    )


@dataclass(frozen=True)
class AgencyFigures:
    year: Year
    code: str
    tree: OrgTree
    totals: dict[str, Count]  # metric → GET /v1/metrics/{metric}?agency=code (as rolled_up)
    monthly: dict[str, dict[str, Count]]
    index: dict[str, Any]  # GET /v1/index766?agency=code
    provenance: Provenance
    completeness: Completeness  # the agency with its subtree, as its figures

    @property
    def has_data(self) -> bool:
        return any(c.denominator or c.undecided for c in self.totals.values()) or bool(
            self.index["events"]
        )


def agency_figures(ctx: ApiContext, year: Year, code: str) -> AgencyFigures:
    read = _read(ctx, year, None, [code])
    return AgencyFigures(
        year=year,
        code=code,
        tree=read.index.scope.tree,
        totals={m: read.grouped[m].get("", Count()) for m in PAGE_METRICS},
        monthly=read.monthly,
        index=read.index.total(),
        provenance=read.provenance,
        completeness=read.completeness.total(),
    )
