"""The pipeline's own health for operators and integrators: freshness, counts, dead letters."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from core.zone import VN
from services.api.deps import Context
from services.api.schemas import DeadLetterDay, DeadLetterOut, DeadLetterSummary

router = APIRouter(prefix="/v1", tags=["pipeline"])


@router.get("/pipeline", summary="Ingest and metrics status, stored counts, freshness")
def pipeline_status(ctx: Context) -> dict[str, Any]:
    stored = ctx.clickhouse.query(
        "SELECT count(), uniqExact(event_id), max(ingested_at), "
        "quantileExact(0.5)(dateDiff('millisecond', published_at, ingested_at)) "
        "FROM events WHERE ingested_at > now64(3) - INTERVAL 1 HOUR"
    ).result_rows[0]
    # The raw table's row count, which the engine answers from its parts' metadata. FINAL made it
    # a merge of the whole history on every call (5.2 s at 50 million events). The ingest
    # stores an event once (its dedup layers; the fault suite counts raw rows against the
    # stream), so the rows are the events; a copy that slipped through would show here until
    # the table's merge drops it.
    totals = ctx.clickhouse.query("SELECT count() FROM events").result_rows[0]
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


# The integrator of a dead letter is its subject's agency token (core/storage/migrations/
# 0014_dead_letters_by_integrator.sql): known even when the bytes are not JSON.
_DEAD_LETTER_FILTER = (
    "({agency:Nullable(String)} IS NULL OR agency_code = {agency:Nullable(String)}) "
    "AND ({reason:Nullable(String)} IS NULL OR reason = {reason:Nullable(String)}) "
    "AND ({start:Nullable(DateTime64(3, 'UTC'))} IS NULL "
    "     OR dead_lettered_at >= {start:Nullable(DateTime64(3, 'UTC'))}) "
    "AND ({end:Nullable(DateTime64(3, 'UTC'))} IS NULL "
    "     OR dead_lettered_at < {end:Nullable(DateTime64(3, 'UTC'))})"
)
# Days whose Vietnamese midnight is storable: DateTime64(3) and Python's datetime both end there.
_FIRST_DAY, _LAST_DAY = date(1900, 1, 2), date(2299, 12, 30)


def _dead_letter_filter(
    agency: str | None,
    integrator: str | None,
    reason: str | None,
    from_: date | None,
    to: date | None,
) -> dict[str, Any]:
    if agency is not None and integrator is not None and agency != integrator:
        raise HTTPException(422, "agency and integrator name the same thing: give one")
    if from_ is not None and to is not None and from_ > to:
        raise HTTPException(422, "from is after to")
    start = end = None
    if from_ is not None and from_ >= _FIRST_DAY:
        start = datetime.combine(from_, time(), VN).astimezone(UTC)
    if to is not None and to <= _LAST_DAY:
        end = datetime.combine(to + timedelta(days=1), time(), VN).astimezone(UTC)
    if to is not None and to < _FIRST_DAY:
        end = datetime.combine(_FIRST_DAY, time(), VN).astimezone(UTC)  # nothing is older
    return {"agency": integrator or agency, "reason": reason, "start": start, "end": end}


def _utc(at: datetime) -> datetime:
    """ClickHouse hands DateTime64(3, 'UTC') back naive; the OpenAPI date-time format (RFC 3339)
    needs the offset (schemathesis found the bare time)."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


Integrator = Annotated[
    str | None, Query(description="The dead letters' subject agency token (the integrator)")
]
FromDay = Annotated[date | None, Query(alias="from", description="First day (Vietnam), inclusive")]
ToDay = Annotated[date | None, Query(description="Last day (Vietnam), inclusive")]


# What one listed letter carries of its bytes: a listing of the most letters allowed stays a few
# MB, however big the letters (issue 14: 1,000 letters of 1 MB each, twice over, made 353 MB).
PREVIEW_BYTES = 512
DETAIL_CHARS = 1000


def _raw_url(subject: str, stream_seq: int) -> str:
    return f"/v1/dead-letters/{stream_seq}/raw?{urlencode({'subject': subject})}"


@router.get(
    "/dead-letters", summary="Recent dead letters, newest first", response_model=list[DeadLetterOut]
)
def dead_letters(
    ctx: Context,
    agency: Annotated[str | None, Query(description="Same as integrator (older name)")] = None,
    integrator: Integrator = None,
    reason: str | None = None,
    from_: FromDay = None,
    to: ToDay = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterOut]:
    params = _dead_letter_filter(agency, integrator, reason, from_, to)
    rows = ctx.clickhouse.query(
        "SELECT d.dead_lettered_at, d.subject, d.stream_seq, d.agency_code, d.source, "
        "toString(d.event_id), d.reason, leftUTF8(d.detail, {detail:UInt32}), "
        "substring(d.raw, 1, {preview:UInt32}) AS preview, length(d.raw), "
        "(d.subject, d.stream_seq, d.published_at) IN "
        "(SELECT subject, stream_seq, published_at FROM dead_letter_replays) "
        "FROM dead_letters AS d FINAL "
        f"WHERE {_DEAD_LETTER_FILTER} "
        "ORDER BY d.dead_lettered_at DESC, d.stream_seq DESC LIMIT {limit:UInt32}",
        parameters={**params, "limit": limit, "preview": PREVIEW_BYTES, "detail": DETAIL_CHARS},
        column_formats={"preview": "bytes"},
    ).result_rows
    return [
        DeadLetterOut(
            dead_lettered_at=_utc(at),
            subject=subject,
            stream_seq=seq,
            agency_code=agency_code,
            integrator=agency_code,
            source=source,
            event_id=event_id,
            reason=why,
            detail=detail,
            raw_preview=bytes(preview).decode("utf-8", errors="replace"),
            raw_bytes=size,
            raw_url=_raw_url(subject, seq),
            raw_expired=size == 0,
            replayed=bool(replayed),
        )
        for (
            at,
            subject,
            seq,
            agency_code,
            source,
            event_id,
            why,
            detail,
            preview,
            size,
            replayed,
        ) in rows
    ]


@router.get(
    "/dead-letters/{stream_seq}/raw",
    summary="One dead letter's original bytes, verbatim",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {}},
)
def dead_letter_raw(
    ctx: Context,
    stream_seq: Annotated[int, Path(ge=1, le=2**63 - 1, description="The letter's stream_seq")],
    subject: Annotated[str, Query(max_length=256, description="The dead letter's subject")],
) -> Response:
    # one letter's bytes at most: 72 KiB since the server's payload limit, 1 MiB before it
    rows = ctx.clickhouse.query(
        "SELECT raw FROM dead_letters FINAL "
        "WHERE subject = {subject:String} AND stream_seq = {seq:UInt64} "
        "ORDER BY published_at DESC LIMIT 1",
        parameters={"subject": subject, "seq": stream_seq},
        column_formats={"raw": "bytes"},
    ).result_rows
    if not rows:
        raise HTTPException(404, "Không có thư lỗi này. No such dead letter.")
    return Response(
        bytes(rows[0][0]),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="dead-letter-{stream_seq}.bin"'},
    )


@router.get(
    "/dead-letters/summary",
    summary="Dead letters per day, integrator and reason",
    response_model=DeadLetterSummary,
)
def dead_letters_summary(
    ctx: Context,
    integrator: Integrator = None,
    reason: str | None = None,
    from_: FromDay = None,
    to: ToDay = None,
) -> DeadLetterSummary:
    if from_ is not None and to is not None and from_ > to:
        raise HTTPException(422, "from is after to")
    rows = ctx.clickhouse.query(
        "SELECT day, integrator, reason, dead_letters, replayed, sources, last_at "
        "FROM dead_letters_daily "
        "WHERE ({agency:Nullable(String)} IS NULL OR integrator = {agency:Nullable(String)}) "
        "AND ({reason:Nullable(String)} IS NULL OR reason = {reason:Nullable(String)}) "
        "AND ({from:Nullable(Date32)} IS NULL OR day >= {from:Nullable(Date32)}) "
        "AND ({to:Nullable(Date32)} IS NULL OR day <= {to:Nullable(Date32)}) "
        "ORDER BY day DESC, integrator, reason",
        parameters={"agency": integrator, "reason": reason, "from": from_, "to": to},
    ).result_rows
    days = [
        DeadLetterDay(
            day=day,
            integrator=who,
            reason=why,
            dead_letters=n,
            replayed=replayed,
            sources=sorted(sources),
            last_at=_utc(last_at),
        )
        for day, who, why, n, replayed, sources, last_at in rows
    ]
    by_integrator: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    for d in days:
        by_integrator[d.integrator] += d.dead_letters
        by_reason[d.reason] += d.dead_letters
    return DeadLetterSummary(
        period_from=from_,
        period_to=to,
        total=sum(by_reason.values()),
        by_integrator=dict(sorted(by_integrator.items())),
        by_reason=dict(sorted(by_reason.items())),
        days=days,
    )


@router.post("/metrics:refresh", summary="Recompute the continuous figures now", status_code=202)
def refresh_metrics(ctx: Context) -> dict[str, str]:
    if ctx.trigger_metrics is None:
        return {"status": "metrics service runs in another process"}
    ctx.trigger_metrics()
    return {"status": "scheduled"}
