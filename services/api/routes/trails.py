"""A dossier's or feedback item's full trail: every stored event in order, with provenance."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from core.figures.periods import FIRST_INSTANT, LAST_INSTANT
from core.figures.trails import trail
from core.zone import utc
from services.api.deps import Context

router = APIRouter(prefix="/v1", tags=["trails"])


class TrailEvent(BaseModel):
    event_id: str
    type: str
    occurred_at: datetime
    agency_code: str
    source: str
    payload: dict[str, Any]
    subject: str
    stream_seq: int
    published_at: datetime
    ingested_at: datetime


class Trail(BaseModel):
    entity: Literal["dossier", "feedback"]
    id: str
    as_of: datetime | None
    events: list[TrailEvent]


def _trail(
    ctx: Context,
    entity: Literal["dossier", "feedback"],
    id: str,
    agency: str | None,
    as_of: datetime | None,
) -> Trail:
    if as_of is not None:
        # DateTime64(3) holds 1900..2299: an instant outside it (found by schemathesis: year 371
        # answered 500) means "before anything was stored" or "after all of it".
        as_of = min(max(utc(as_of), FIRST_INSTANT), LAST_INSTANT)
    rows = trail(ctx.clickhouse, entity, id, agency, as_of)
    if not rows:
        raise HTTPException(404, f"no events for {entity} {id!r}")
    events = [
        TrailEvent(
            event_id=r.event_id,
            type=r.type,
            occurred_at=utc(r.occurred_at),
            agency_code=r.agency_code,
            source=r.source,
            payload=json.loads(r.payload),
            subject=r.subject,
            stream_seq=r.stream_seq,
            published_at=utc(r.published_at),
            ingested_at=utc(r.ingested_at),
        )
        for r in rows
    ]
    return Trail(entity=entity, id=id, as_of=as_of, events=events)


AgencyParam = Annotated[
    str | None, Query(description="Agency code, when ids repeat across agencies")
]
AsOfParam = Annotated[datetime | None, Query(description="Only events ingested by this instant")]


@router.get("/dossiers/{dossier_id}/events", response_model=Trail, summary="A dossier's trail")
def dossier_trail(
    ctx: Context, dossier_id: str, agency: AgencyParam = None, as_of: AsOfParam = None
) -> Trail:
    return _trail(ctx, "dossier", dossier_id, agency, as_of)


@router.get("/feedback/{feedback_id}/events", response_model=Trail, summary="A feedback trail")
def feedback_trail(
    ctx: Context, feedback_id: str, agency: AgencyParam = None, as_of: AsOfParam = None
) -> Trail:
    return _trail(ctx, "feedback", feedback_id, agency, as_of)
