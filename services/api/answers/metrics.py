"""The answer of GET /v1/metrics/{metric}, built here for the route and the public page alike
(services/api/routes/metrics.py, services/api/page/figures.py), so the page and the API can never
show different numbers for the same question."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Literal

from clickhouse_connect.driver.client import Client
from fastapi import HTTPException

from core.figures import rules
from core.figures.completeness import ScopeCompleteness
from core.figures.definitions import METRICS
from core.figures.metric_query import MetricQuery, metric_query
from core.figures.periods import (
    FIRST_INSTANT,
    Filters,
    GroupBy,
    MetricQueryError,
    MetricRow,
    Period,
)
from core.figures.reads import Read, beside
from core.figures.scope import resolve
from core.figures.sql_params import calendar
from core.reference.catalog import Catalog
from core.storage.pool import run_all
from core.zone import VN
from services.api.completeness import out, scope_completeness
from services.api.deps import ApiContext
from services.api.params import split_list
from services.api.schemas import MetricGroup, MetricResult, Provenance

# An insert stamps ingested_at a moment before its rows become visible: an as-of instant this
# recent could still gain rows, so it is refused rather than answered unrepeatably.
AS_OF_SETTLE = timedelta(seconds=5)


def settled_as_of(ctx: ApiContext, as_of: datetime | None) -> datetime:
    """The instant figures are judged at: now, or a settled as-of instant."""
    now = ctx.clock()
    if as_of is None:
        return now
    if as_of.tzinfo is None:
        raise HTTPException(422, "as_of needs a UTC offset, e.g. 2026-03-31T17:00:00+07:00")
    if as_of < FIRST_INSTANT:  # found by schemathesis: year 371 reached ClickHouse and gave 500
        raise HTTPException(422, f"as_of must be after {FIRST_INSTANT.isoformat()}")
    if as_of > now - AS_OF_SETTLE:
        raise HTTPException(422, f"as_of must be at least {AS_OF_SETTLE.seconds}s in the past")
    return as_of  # open items are judged as they were then


def full_online_codes(client: Client, at: date) -> tuple[str, ...]:
    return tuple(p.code for p in Catalog.load(client, at) if p.full_online_eligible)


def build_query(
    ctx: ApiContext,
    metric: str,
    first: date | None,
    last: date | None,
    agency: list[str] | None,
    domain: list[str] | None,
    level: list[str] | None,
    group_by: GroupBy | None,
    as_of: datetime | None,
    rule_set: str | None = None,
    rollup: bool = True,
) -> MetricQuery:
    if metric not in METRICS:
        raise HTTPException(404, f"unknown metric {metric!r}; see GET /v1/metrics")
    now = settled_as_of(ctx, as_of)
    last = last or now.astimezone(VN).date()
    first = first or last.replace(month=1, day=1)
    try:
        period = Period.from_dates(first, last)
        scope = resolve(ctx.clickhouse, split_list(agency), period.last_day, rollup)
        filters = Filters(scope.agencies, split_list(domain), split_list(level))
        return metric_query(
            metric,
            period=period,
            now=now,
            filters=filters,
            group_by=group_by,
            as_of=as_of,
            rule_set=rules.get(rule_set),
            org_tree=scope.tree_version,
            full_online_eligible=(
                full_online_codes(ctx.clickhouse, period.last_day)
                if METRICS[metric].reads_catalogue
                else ()
            ),
        )
    except (MetricQueryError, rules.UnknownRuleSet) as exc:
        raise HTTPException(422, str(exc)) from exc


def metric_result(
    ctx: ApiContext,
    metric: str,
    first: date | None = None,
    last: date | None = None,
    agency: list[str] | None = None,
    domain: list[str] | None = None,
    level: list[str] | None = None,
    group_by: GroupBy | None = None,
    as_of: datetime | None = None,
    rule_set: str | None = None,
    rollup: bool = True,
    read: Read | None = None,
) -> MetricResult:
    """The answer of GET /v1/metrics/{metric}; the public page calls it too, so the page and the
    API can never show different numbers for the same question. `read`: how the store stands,
    when the caller asks several questions at once (the page: MetricQuery.run)."""

    # the question (its scope reads the org tree's stamp) beside how the store stands
    (query,), read = beside(
        ctx.clickhouse,
        as_of,
        read,
        [
            lambda: build_query(
                ctx, metric, first, last, agency, domain, level, group_by, as_of, rule_set, rollup
            )
        ],
    )
    # the figure and its completeness side by side (one more query, whatever the groups)
    calls: list[Callable[[], Any]] = [
        lambda: query.run(ctx.clickhouse, read),
        lambda: figure_completeness(ctx, query),
    ]
    try:
        rows, completeness = run_all(ctx.clickhouse, calls)
    except MetricQueryError as exc:
        raise HTTPException(422, str(exc)) from exc
    return _result(query, rows, group_by, as_of, completeness)


def figure_completeness(ctx: ApiContext, query: MetricQuery) -> ScopeCompleteness:
    """The completeness of the figure's population: its period's ended days, its agencies (after
    the org tree's expansion; all of them province-wide), judged at its instant."""
    period = query.period
    return scope_completeness(
        ctx, period.first_day, period.last_day, query.filters.agencies, query.now
    )


def metric_result_with_months(
    ctx: ApiContext,
    metric: str,
    first: date,
    last: date,
    agency: list[str] | None = None,
    group_by: Literal["agency"] | None = None,
    read: Read | None = None,
) -> tuple[MetricResult, MetricResult]:
    """metric_result(group_by) and metric_result(group_by="month") of a flow figure, from one
    read of the store (MetricQuery.run_with_months): the page shows both for each figure."""
    query = build_query(ctx, metric, first, last, agency, None, None, group_by, None)
    try:
        grouped, monthly = query.run_with_months(ctx.clickhouse, read)
    except MetricQueryError as exc:
        raise HTTPException(422, str(exc)) from exc
    return _result(query, grouped, group_by, None), _result(query, monthly, "month", None)


def _result(
    query: MetricQuery,
    rows: list[MetricRow],
    group_by: GroupBy | None,
    as_of: datetime | None,
    completeness: ScopeCompleteness | None = None,
) -> MetricResult:
    """`completeness`: the population's (figure_completeness); the page reads its own once for
    all its figures, so the answers it asks for go without."""
    period, now, filters = query.period, query.now, query.filters
    by_agency = completeness if group_by == "agency" else None
    return MetricResult(
        metric=query.metric.id,
        label=query.metric.label,
        period_from=period.first_day,
        period_to=period.last_day,
        judged_at=min(period.end, now),
        group_by=group_by,
        agency=list(filters.agencies),
        domain=list(filters.domains),
        level=list(filters.levels),
        groups=[
            MetricGroup(
                group=r.group,
                numerator=r.numerator,
                denominator=r.denominator,
                rate=r.rate,
                undecided=None if query.metric.pending is None else r.pending,
                completeness=(
                    None if by_agency is None or r.group is None else out(by_agency.of((r.group,)))
                ),
            )
            for r in rows
        ],
        provenance=Provenance(
            as_of=as_of,
            watermark=max((r.watermark for r in rows if r.watermark), default=None),
            events=sum(r.events for r in rows),
            rule_set=query.rule_set.id,
            calendar=calendar().version,
            org_tree=query.org_tree,
            computed_at=now,
            completeness=None if completeness is None else out(completeness.total()),
        ),
    )
