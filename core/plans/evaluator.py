"""Every target of every plan, evaluated for each agency it judges: reads the store, calls the pure
forecast, returns rows for `target_status`.

One query per target and period: the metric's daily series by agency (MetricQuery, the same
definition the API and the boards use), then each judged unit's series is the sum over its subtree
in the org tree valid at the period's end. QĐ 766 indicators come from the index computation.
"""

from __future__ import annotations

import calendar as cal
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime

from clickhouse_connect.driver.client import Client

from core.figures import index766, rules
from core.figures.definitions import METRICS
from core.figures.metric_query import metric_query
from core.figures.periods import DailyRow, Filters, Period
from core.figures.reads import Read
from core.figures.sql_params import calendar
from core.plans import forecast, projection, scopes
from core.plans.model import DateRange, Plan, Target
from core.plans.status import SCOPE, TargetStatus, burn_windows, due_periods
from core.reference.catalog import Catalog
from core.reference.org_tree import OrgTree
from core.zone import VN


class Evaluator:
    """Evaluates plans against the store. Holds caches that only save work (the previous year's
    seasonal factors); every result is recomputed from the store."""

    def __init__(
        self,
        client: Client,
        plans: Mapping[str, Plan],
        *,
        policy: forecast.Policy = forecast.DEFAULT_POLICY,
        folded_only: bool = False,
    ) -> None:
        self._client = client
        # Read the facts alone (the metrics service, beside a refolder: see MetricsService._read)
        self._folded_only = folded_only
        self._plans = plans
        self._policy = policy
        self._seasonal: dict[tuple[str, str, int, frozenset[str]], dict[int, float] | None] = {}
        self._last_years: dict[tuple[str, str, int], list[DailyRow]] = {}
        # The 766 index's leaf counts per (period, agencies, judging instant), within one
        # evaluate() only.
        self._leaves: dict[
            tuple[Period, tuple[str, ...], datetime],
            dict[str, tuple[index766.Counts, index766.Counts]],
        ] = {}
        # How the store stands, asked once per evaluate() instead of once per question.
        self._read: Read | None = None

    @property
    def plans(self) -> Mapping[str, Plan]:
        return self._plans

    def evaluate(self, now: datetime) -> list[TargetStatus]:
        client = self._client
        self._read = Read.folded(client) if self._folded_only else Read.of(client, None)
        try:
            return self._evaluate(now)
        finally:
            self._read = None
            self._leaves.clear()
            self._last_years.clear()

    def _evaluate(self, now: datetime) -> list[TargetStatus]:
        today = now.astimezone(VN).date()
        out: list[TargetStatus] = []
        for plan in self._plans.values():
            if plan.valid.start > today:
                continue
            for target in plan.targets:
                for period in due_periods(plan, target, today):
                    out.extend(self.evaluate_target(plan, target, period, now))
        return out

    def evaluate_target(
        self, plan: Plan, target: Target, span: DateRange, now: datetime
    ) -> list[TargetStatus]:
        period = Period.from_dates(span.start, span.end)
        tree = OrgTree.load(self._client, span.end)
        requested = set(target.scope.agencies)
        codes = scopes.subtrees(tree, requested) if requested else set()
        units = scopes.units(target, tree, requested)
        if target.indicator is not None:
            return self._indicator(plan, target, span, period, now, tree, codes, units)
        metric = METRICS[target.metric]
        query = metric_query(
            target.metric,
            period=period,
            now=now,
            filters=Filters(tuple(sorted(codes)), target.scope.domains, target.scope.levels),
            rule_set=rules.get(),
            full_online_eligible=scopes.eligible(self._client, span.end, target.metric),
        )
        today = now.astimezone(VN).date()
        if metric.anchor is not None:
            rows = query.daily_by_agency(self._client, self._read)
        else:  # a stock figure: judged at `now` only, no daily series to forecast from
            rows = [
                DailyRow(
                    r.group or "", min(today, span.end), r.numerator, r.denominator, 0, r.watermark
                )
                for r in scopes.by_agency(query, self._client, self._read)
            ]
        if units is None:  # every agency with figures, and every unit above one
            units = scopes.with_ancestors(tree, {r.agency for r in rows})
        out = []
        for unit in [SCOPE, *sorted(units)]:
            members = (
                None if unit == SCOPE else (tree.descendants(unit) if unit in tree else {unit})
            )
            series = scopes.series(r for r in rows if members is None or r.agency in members)
            threshold = target.threshold if unit == SCOPE else target.threshold_for(unit)
            seasonal = self._seasonal_factors(target, span, members) if metric.anchor else None
            evaluation = projection.evaluate(
                forecast.Target(target.comparator, threshold, target.min_count, metric.final),
                series,
                today=today,
                period_end=span.end,
                calendar=calendar(),
                policy=self._policy,
                seasonal=seasonal,
                burn_windows=burn_windows(plan),
                forecastable=metric.anchor is not None,
            )
            watermark = max(
                (
                    r.watermark
                    for r in rows
                    if r.watermark and (members is None or r.agency in members)
                ),
                default=None,
            )
            out.append(TargetStatus(plan, target, unit, span, threshold, evaluation, watermark))
        self._last_years.clear()  # a year of daily rows: kept only while its units are judged
        return out

    def _indicator(
        self,
        plan: Plan,
        target: Target,
        span: DateRange,
        period: Period,
        now: datetime,
        tree: OrgTree,
        codes: set[str],
        units: set[str] | None,
    ) -> list[TargetStatus]:
        chosen = rules.get()
        # Several targets score indicators of one index over the same period and scope: counted
        # once per evaluation (each count is a year or more of dossiers).
        key = (period, tuple(sorted(codes)), now)
        if key not in self._leaves:
            self._leaves[key] = index766.leaf_counts(
                self._client, period, now, key[1], rule_set=chosen, read=self._read
            )
        leaves = self._leaves[key]
        catalog = Catalog.load(self._client, span.end)
        if units is None:
            units = scopes.with_ancestors(tree, set(leaves))
        today = now.astimezone(VN).date()
        out = []
        for unit in [SCOPE, *sorted(units)]:
            members = (
                (codes or set(leaves) | set(tree))
                if unit == SCOPE
                else (tree.descendants(unit) if unit in tree else {unit})
            )
            dossiers, feedback = index766.combine([v for k, v in leaves.items() if k in members])
            result = index766.index_for(
                dossiers,
                feedback,
                index766.procedures_in_scope(catalog, tree, members),
                period,
                calendar(),
                chosen,
                catalog.version,
            )
            score = next(s for s in result.scores if s.indicator.id == target.indicator)
            series = (
                [forecast.Day(min(today, span.end), score.numerator or 0, score.denominator or 0)]
                if score.denominator
                else []
            )
            threshold = target.threshold if unit == SCOPE else target.threshold_for(unit)
            evaluation = projection.evaluate(
                forecast.Target(target.comparator, threshold, target.min_count, False),
                series,
                today=today,
                period_end=span.end,
                calendar=calendar(),
                policy=self._policy,
                forecastable=False,
            )
            out.append(
                TargetStatus(plan, target, unit, span, threshold, evaluation, result.watermark)
            )
        return out

    def _seasonal_factors(
        self, target: Target, span: DateRange, members: set[str] | None
    ) -> dict[int, float] | None:
        """Volume per working day in each month of the previous year, relative to that year's
        mean; None unless at least 10 months of it have items (no seasonality is invented)."""
        year = span.start.year - 1
        key = (target.metric, repr(target.scope.key()), year, frozenset(members or ()))
        if key in self._seasonal:
            return self._seasonal[key]
        if members is not None:
            codes = set(members)
        else:
            codes = scopes.subtrees(
                OrgTree.load(self._client, date(year, 12, 31)), set(target.scope.agencies)
            )
        per_month: dict[int, int] = defaultdict(int)
        for r in self._last_year(target, year):
            if not codes or r.agency in codes:
                per_month[r.day.month] += r.total
        factors: dict[int, float] | None = None
        wc = calendar()
        if sum(1 for v in per_month.values() if v > 0) >= 10 and year in wc.years:
            per_wd = {}
            for month in range(1, 13):
                days = cal.monthrange(year, month)[1]
                wd = sum(wc.is_working_day(date(year, month, d)) for d in range(1, days + 1))
                per_wd[month] = per_month.get(month, 0) / wd if wd else 0.0
            mean = sum(per_wd.values()) / 12
            factors = {m: v / mean for m, v in per_wd.items()} if mean > 0 else None
        self._seasonal[key] = factors
        return factors

    def _last_year(self, target: Target, year: int) -> list[DailyRow]:
        """The target's daily series in `year`, for every agency: read once per target and year,
        then summed per unit (a read per unit made a cold evaluation ~300 reads of a year)."""
        key = (target.metric, repr(target.scope.key()), year)
        if key not in self._last_years:
            whole = Period.from_dates(date(year, 1, 1), date(year, 12, 31))
            query = metric_query(
                target.metric,
                period=whole,
                now=whole.end,
                filters=Filters((), target.scope.domains, target.scope.levels),
                rule_set=rules.get(),
            )
            self._last_years[key] = query.daily_by_agency(self._client, self._read)
        return self._last_years[key]
