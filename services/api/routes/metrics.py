"""GET /v1/metrics and /v1/metrics/{metric}: every figure as numerator, denominator and rate.

The answers themselves are built in services/api/answers/metrics.py (the public page gives them
too); the shared query parameters are services/api/params.py."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from core.figures import rules
from core.figures.definitions import METRICS
from core.figures.periods import GroupBy
from services.api.answers.metrics import build_query, metric_result
from services.api.deps import Context
from services.api.drilldown import ItemsPage, csv_items, labelled
from services.api.exports import CSV_RESPONSES
from services.api.params import (
    FromMsParam,
    ListParam,
    RollupParam,
    RuleSetParam,
    ToMsParam,
    range_days,
)
from services.api.schemas import MetricDefinition, MetricResult

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])


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
