"""GET /v1/metrics and /v1/metrics/{metric}: every figure as numerator, denominator and rate."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from services.api.deps import Context
from services.api.schemas import MetricDefinition, MetricGroup, MetricResult, Provenance
from services.metrics.definitions import METRICS
from services.metrics.queries import (
    RULES_VERSION,
    VN,
    Filters,
    GroupBy,
    MetricQueryError,
    Period,
    metric_query,
)

# An insert stamps ingested_at a moment before its rows become visible: an as-of instant this
# recent could still gain rows, so it is refused rather than answered unrepeatably.
AS_OF_SETTLE = timedelta(seconds=5)

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])

ListParam = Annotated[
    list[str] | None,
    Query(description="Repeat the parameter or separate values with commas", max_length=200),
]


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
        )
        for m in METRICS.values()
    ]


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
) -> MetricResult:
    if metric not in METRICS:
        raise HTTPException(404, f"unknown metric {metric!r}; see GET /v1/metrics")
    now = ctx.clock()
    if as_of is not None:
        if as_of.tzinfo is None:
            raise HTTPException(422, "as_of needs a UTC offset, e.g. 2026-03-31T17:00:00+07:00")
        if as_of > now - AS_OF_SETTLE:
            raise HTTPException(422, f"as_of must be at least {AS_OF_SETTLE.seconds}s in the past")
        # Open items are judged at the as-of instant, as they were then.
        now = as_of
    last = to or now.astimezone(VN).date()
    first = from_ or last.replace(month=1, day=1)
    filters = Filters(split_list(agency), split_list(domain), split_list(level))
    try:
        period = Period.from_dates(first, last)
        query = metric_query(
            metric, period=period, now=now, filters=filters, group_by=group_by, as_of=as_of
        )
        rows = query.run(ctx.clickhouse)
    except MetricQueryError as exc:
        raise HTTPException(422, str(exc)) from exc
    return MetricResult(
        metric=metric,
        label=METRICS[metric].label,
        period_from=first,
        period_to=last,
        judged_at=min(period.end, now),
        group_by=group_by,
        agency=list(filters.agencies),
        domain=list(filters.domains),
        level=list(filters.levels),
        groups=[
            MetricGroup(
                group=r.group, numerator=r.numerator, denominator=r.denominator, rate=r.rate
            )
            for r in rows
        ],
        provenance=Provenance(
            as_of=as_of,
            watermark=max((r.watermark for r in rows if r.watermark), default=None),
            events=sum(r.events for r in rows),
            rule_set=RULES_VERSION,
        ),
    )
