"""The pipeline's own health for operators and integrators: freshness, counts, dead letters."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.api.deps import Context
from services.api.schemas import DeadLetterOut

router = APIRouter(prefix="/v1", tags=["pipeline"])


@router.get("/pipeline", summary="Ingest and metrics status, stored counts, freshness")
def pipeline_status(ctx: Context) -> dict[str, Any]:
    stored = ctx.clickhouse.query(
        "SELECT count(), uniqExact(event_id), max(ingested_at), "
        "quantileExact(0.5)(dateDiff('millisecond', published_at, ingested_at)) "
        "FROM events WHERE ingested_at > now64(3) - INTERVAL 1 HOUR"
    ).result_rows[0]
    totals = ctx.clickhouse.query("SELECT count() FROM events FINAL").result_rows[0]
    reasons = ctx.clickhouse.query(
        "SELECT agency_code, reason, count() FROM dead_letters FINAL GROUP BY ALL ORDER BY ALL"
    ).result_rows
    return {
        "events_stored": totals[0],
        "last_hour": {
            "events": stored[0],
            "distinct_events": stored[1],
            "last_ingested_at": stored[2],
            "median_publish_to_stored_ms": stored[3],
        },
        "dead_letters": [{"agency_code": a, "reason": r, "count": n} for a, r, n in reasons],
        "ingest": asdict(ctx.ingest_stats()) if ctx.ingest_stats else None,
        "metrics": asdict(ctx.metrics_status()) if ctx.metrics_status else None,
    }


@router.get(
    "/dead-letters", summary="Recent dead letters, newest first", response_model=list[DeadLetterOut]
)
def dead_letters(
    ctx: Context,
    agency: Annotated[str | None, Query(description="Agency code from the subject")] = None,
    reason: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterOut]:
    rows = ctx.clickhouse.query(
        "SELECT dead_lettered_at, subject, stream_seq, agency_code, source, "
        "toString(event_id), reason, detail, raw FROM dead_letters FINAL "
        "WHERE ({agency:Nullable(String)} IS NULL OR agency_code = {agency:Nullable(String)}) "
        "AND ({reason:Nullable(String)} IS NULL OR reason = {reason:Nullable(String)}) "
        "ORDER BY dead_lettered_at DESC, stream_seq DESC LIMIT {limit:UInt32}",
        parameters={"agency": agency, "reason": reason, "limit": limit},
    ).named_results()
    return [DeadLetterOut(**row) for row in rows]


@router.post("/metrics:refresh", summary="Recompute the continuous figures now", status_code=202)
def refresh_metrics(ctx: Context) -> dict[str, str]:
    if ctx.trigger_metrics is None:
        return {"status": "metrics service runs in another process"}
    ctx.trigger_metrics()
    return {"status": "scheduled"}
