"""POST /v1/dead-letters:replay (admin): `motcua dlq replay` over HTTP.

The embedded store opens in one process only, so while `motcua up` runs the CLI cannot reach it;
this route runs the same function (core/ingestion/dlq.py) inside the running process: re-run
the current processor on the selected dead letters and republish those that now pass, on their
original subject with their original bytes, for the ingest to take like any other event. An API
that reads through a read-only ClickHouse user (compose) answers 501 and names the command.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException
from pydantic import AwareDatetime, BaseModel, Field

from core.zone import VN
from schemas.asyncapi import DEAD_LETTER_REASONS
from services.api.deps import Context

router = APIRouter(prefix="/v1", tags=["pipeline"])

Reason = Literal[DEAD_LETTER_REASONS]  # type: ignore[valid-type]
NOT_HERE = (
    "Phát lại dead letter không chạy được qua API này (chỉ đọc ClickHouse). "
    "This API reads ClickHouse read-only: run `motcua dlq replay` with the admin connection, "
    "e.g. `docker compose run --rm migrate motcua dlq replay --integrator STNMT`."
)


class ReplayRequest(BaseModel):
    integrator: Annotated[
        str | None,
        Field(
            max_length=64,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="Agency code of the dead letters' subject; all when omitted",
        ),
    ] = None
    reason: Reason | None = Field(None, description="Only dead letters refused for this reason")
    since: AwareDatetime | date | None = Field(
        None, description="Dead-lettered at or after: a day (Vietnam midnight) or an instant"
    )
    dry_run: bool = Field(False, description="Say what would happen; publish and record nothing")


class ReplayOut(BaseModel):
    dry_run: bool
    candidates: int = Field(description="Dead letters of the selection not replayed before")
    republished: int = Field(description="Published again (with dry_run: would be)")
    already_stored: int = Field(description="Pass now, but their event_id is stored already")
    expired: int = Field(description="Raw bytes past their retention: nothing to replay")
    still_refused: dict[str, int] = Field(description="Reason → dead letters that still fail")
    event_ids: list[str] = Field(description="The republished events")


@router.post(
    "/dead-letters:replay",
    summary="Re-run the current checks on dead letters and republish those that now pass",
    response_model=ReplayOut,
    responses={501: {"description": "Read-only API: use `motcua dlq replay`"}},
)
async def replay(ctx: Context, body: ReplayRequest) -> ReplayOut:
    if ctx.replay_dead_letters is None:
        raise HTTPException(501, NOT_HERE)
    since = body.since
    if isinstance(since, date) and not isinstance(since, datetime):
        since = datetime(since.year, since.month, since.day, tzinfo=VN)
    report = await ctx.replay_dead_letters(
        integrator=body.integrator, reason=body.reason, since=since, dry_run=body.dry_run
    )
    return ReplayOut(
        dry_run=report.dry_run,
        candidates=report.candidates,
        republished=report.republished,
        already_stored=report.already_stored,
        expired=report.expired,
        still_refused=report.still_refused,
        event_ids=report.event_ids,
    )
