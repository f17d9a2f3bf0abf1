"""GET /v1/metrics and /v1/metrics/{metric}: every figure as numerator, denominator and rate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from clickhouse_connect.driver.client import Client
from fastapi import APIRouter, HTTPException, Query

from core.figures import rules
from core.figures.completeness import ScopeCompleteness
from core.figures.definitions import METRICS
from core.figures.queries import (
    FIRST_INSTANT,
    Filters,
    GroupBy,
    MetricQuery,
    MetricQueryError,
    MetricRow,
    Period,
    Read,
    calendar,
    metric_query,
)
from core.figures.scope import resolve
from core.reference.catalog import Catalog
from core.storage.pool import run_all
from core.zone import VN
from services.api.completeness import out, scope_completeness
from services.api.deps import ApiContext, Context
from services.api.drilldown import ItemsPage, csv_items, labelled
from services.api.exports import CSV_RESPONSES
from services.api.schemas import MetricDefinition, MetricGroup, MetricResult, Provenance

# An insert stamps ingested_at a moment before its rows become visible: an as-of instant this
# recent could still gain rows, so it is refused rather than answered unrepeatably.
AS_OF_SETTLE = timedelta(seconds=5)

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])

ListParam = Annotated[
    list[str] | None,
    Query(description="Repeat the parameter or separate values with commas", max_length=200),
]


RuleSetParam = Annotated[
    str | None,
    Query(description="Rule set name@version (GET /v1/rule-sets); default the reference"),
]


RollupParam = Annotated[
    bool,
    Query(description="Count an agency with everything under it in the org tree of the period"),
]

# A dashboard's time range (Grafana's ${__from} and ${__to}): the local days it touches.
FromMsParam = Annotated[
    int | None,
    Query(
        description="Instead of `from`: the start of a time range in Unix milliseconds "
        "(Grafana's ${__from}); the figure covers the Asia/Ho_Chi_Minh day it falls on",
        ge=-2_208_988_800_000,  # 1900-01-01
        le=10_413_792_000_000,  # 2300-01-01
    ),
]
ToMsParam = Annotated[
    int | None,
    Query(
        description="Instead of `to`: the end of a time range in Unix milliseconds "
        "(Grafana's ${__to}); the figure covers up to the Asia/Ho_Chi_Minh day it falls on",
        ge=-2_208_988_800_000,
        le=10_413_792_000_000,
    ),
]


def range_days(
    first: date | None, last: date | None, from_ms: int | None, to_ms: int | None
) -> tuple[date | None, date | None]:
    """The days a question covers: `from`/`to`, or the local days of a dashboard's range.

    A board's range is a pair of instants; this service counts whole Asia/Ho_Chi_Minh days, so a
    range covers every day it touches, its first and last included (a range from 22:00 to 02:00
    covers both days). The conversion happens here, once, for the boards and any other client."""
    if from_ms is None and to_ms is None:
        return first, last
    if first is not None or last is not None:
        raise HTTPException(422, "give `from`/`to` (days) or `from_ms`/`to_ms` (a range), not both")
    day = {
        name: None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).astimezone(VN).date()
        for name, ms in (("from", from_ms), ("to", to_ms))
    }
    return day["from"], day["to"]


def split_list(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(dict.fromkeys(out))


@router.get("", summary="Every metric with its definition", response_model=list[MetricDefinition])
def list_metrics() -> list[MetricDefinition]:
    return [
        MetricDefinition(
            id=m.id,
            label=m.label,
            description=m.description,
            entity=m.entity,
            groupable_by=(
                ["agency", "domain", "level", "day", "month"]
                if m.entity == "dossier"
                else ["agency", "day", "month"]
            ),
            target=m.target,
            unit=m.unit,
        )
        for m in METRICS.values()
    ]


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
    query = build_query(
        ctx, metric, first, last, agency, domain, level, group_by, as_of, rule_set, rollup
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


@router.get("/{metric}", summary="One metric over a period", response_model=MetricResult)
def get_metric(
    ctx: Context,
    metric: str,
    from_: Annotated[date | None, Query(alias="from", description="First day (inclusive)")] = None,
    to: Annotated[date | None, Query(description="Last day (inclusive); default today")] = None,
    agency: ListParam = None,
    domain: ListParam = None,
    level: ListParam = None,
    group_by: GroupBy | None = None,
    as_of: Annotated[
        datetime | None,
        Query(description="Answer as the system knew it at this ingest instant (with offset)"),
    ] = None,
    rule_set: RuleSetParam = None,
    rollup: RollupParam = True,
    from_ms: FromMsParam = None,
    to_ms: ToMsParam = None,
) -> MetricResult:
    first, last = range_days(from_, to, from_ms, to_ms)
    return metric_result(
        ctx, metric, first, last, agency, domain, level, group_by, as_of, rule_set, rollup
    )


@router.get(
    "/{metric}/items",
    summary="The dossiers or feedback behind a figure (drill-down)",
    response_model=ItemsPage,
    responses=CSV_RESPONSES,  # format=csv
)
def metric_items(
    ctx: Context,
    metric: str,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    agency: ListParam = None,
    domain: ListParam = None,
    level: ListParam = None,
    as_of: datetime | None = None,
    part: Annotated[
        Literal["numerator", "denominator"], Query(description="Which side of the ratio")
    ] = "numerator",
    # bounded: the offset must fit the engine's UInt64
    page: Annotated[
        int | None, Query(ge=1, le=1_000_000_000, description="JSON only; default 1")
    ] = None,
    page_size: Annotated[
        int | None, Query(ge=1, le=10_000, description="JSON only; default 100")
    ] = None,
    format: Literal["json", "csv"] = "json",
    rule_set: RuleSetParam = None,
    rollup: RollupParam = True,
) -> Any:
    """The items judged as the figure judges them, at `judged_at` (the period's end, or now).
    JSON: a page of them and their `total`. CSV: every one of them, in the same order, streamed
    (at most MOTCUA_API_EXPORT_MAX_ROWS; past it the file ends with a line saying it was cut);
    `page` and `page_size` are refused with it.

    A dossier's `timeliness`: `early`, `on_time` or `late` once finished (§2, at its end);
    `within` or `overdue` while still open at `judged_at`, as Biểu II.06a counts open dossiers
    (`timeliness_label`: the same in Vietnamese)."""
    if format == "csv" and (page is not None or page_size is not None):
        raise HTTPException(
            422,
            "Tệp CSV gồm mọi mục: bỏ `page` và `page_size` (chỉ dùng cho JSON). "
            "format=csv holds every item: drop `page` and `page_size` (they page the JSON).",
        )
    query = build_query(
        ctx, metric, from_, to, agency, domain, level, None, as_of, rule_set, rollup
    )
    if format == "csv":
        return csv_items(
            query,
            ctx.clickhouse,
            part,
            chunk=ctx.export_chunk_rows,
            max_rows=ctx.export_max_rows,
        )
    page, page_size = page or 1, page_size or 100
    total, items = query.items(ctx.clickhouse, part, page_size, (page - 1) * page_size)
    return {
        "metric": metric,
        "part": part,
        "period_from": query.period.first_day,
        "period_to": query.period.last_day,
        "judged_at": min(query.period.end, query.now),
        "total": total,
        "page": page,
        "page_size": page_size,
        "items": [labelled(item) for item in items],
    }


rule_sets_router = APIRouter(prefix="/v1/rule-sets", tags=["metrics"])


@rule_sets_router.get("", summary="The rule sets figures can be computed under")
def list_rule_sets() -> list[dict[str, Any]]:
    return [
        {**rs.model_dump(), "id": rs.id, "default": rs.id == rules.DEFAULT_RULE_SET}
        for rs in rules.available().values()
    ]
