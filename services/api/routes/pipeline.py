"""The pipeline's own health for operators and integrators: freshness, counts, dead letters."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from core.ingestion import status
from core.ingestion.status import DeadLetterFilter, pipeline_counts
from core.zone import VN, utc
from services.api.deps import Context
from services.api.schemas import DeadLetterDay, DeadLetterOut, DeadLetterSummary

router = APIRouter(prefix="/v1", tags=["pipeline"])


@router.get("/pipeline", summary="Ingest and metrics status, stored counts, freshness")
def pipeline_status(ctx: Context) -> dict[str, Any]:
    counts = pipeline_counts(ctx.clickhouse)
    return {
        "events_stored": counts.events_stored,
        "last_hour": counts.last_hour._asdict(),
        "dead_letters": [asdict(r) for r in counts.dead_letters],
        "ingest": asdict(ctx.ingest_stats()) if ctx.ingest_stats else None,
        "metrics": asdict(ctx.metrics_status()) if ctx.metrics_status else None,
    }


# Days whose Vietnamese midnight is storable: DateTime64(3) and Python's datetime both end there.
_FIRST_DAY, _LAST_DAY = date(1900, 1, 2), date(2299, 12, 30)


def _dead_letter_filter(
    agency: str | None,
    integrator: str | None,
    reason: str | None,
    from_: date | None,
    to: date | None,
) -> DeadLetterFilter:
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
    return DeadLetterFilter(integrator or agency, reason, start, end)


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
    which = _dead_letter_filter(agency, integrator, reason, from_, to)
    rows = status.dead_letters(ctx.clickhouse, which, limit, PREVIEW_BYTES, DETAIL_CHARS)
    return [
        DeadLetterOut(
            dead_lettered_at=utc(r.dead_lettered_at),
            subject=r.subject,
            stream_seq=r.stream_seq,
            agency_code=r.agency_code,
            integrator=r.agency_code,
            source=r.source,
            event_id=r.event_id,
            reason=r.reason,
            detail=r.detail,
            raw_preview=bytes(r.preview).decode("utf-8", errors="replace"),
            raw_bytes=r.raw_bytes,
            raw_url=_raw_url(r.subject, r.stream_seq),
            raw_expired=r.raw_bytes == 0,
            replayed=bool(r.replayed),
        )
        for r in rows
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
    raw = status.dead_letter_raw(ctx.clickhouse, subject, stream_seq)
    if raw is None:
        raise HTTPException(404, "Không có thư lỗi này. No such dead letter.")
    return Response(
        raw,
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
    days = [
        DeadLetterDay(
            day=r.day,
            integrator=r.integrator,
            reason=r.reason,
            dead_letters=r.dead_letters,
            replayed=r.replayed,
            sources=sorted(r.sources),
            last_at=utc(r.last_at),
        )
        for r in status.dead_letter_days(ctx.clickhouse, integrator, reason, from_, to)
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
