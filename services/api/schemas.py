"""Response models of the read API, distinct from storage rows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer


class MetricDefinition(BaseModel):
    id: str
    label: str = Field(description="Tên chỉ tiêu (tiếng Việt)")
    description: str
    entity: str
    groupable_by: list[str]
    target: str = Field(description="Mục tiêu của kế hoạch, nếu có")
    unit: str = Field(description="ratio: rate = share; minutes: rate = average in minutes")


class MetricGroup(BaseModel):
    group: str | None = Field(description="The group's key; null when not grouped")
    numerator: int
    denominator: int
    rate: float | None = Field(description="numerator / denominator; null when denominator is 0")
    undecided: int | None = Field(
        default=None,
        description="Items of the denominator whose outcome is not decided at judged_at (feedback "
        "still within its answer deadline): neither a success nor a failure yet, so "
        "numerator / (denominator - undecided) is the rate over decided items. Only on figures "
        "with such items (feedback_answered_on_time); absent elsewhere",
    )

    @model_serializer(mode="wrap")
    def _without_absent_undecided(self, handler: SerializerFunctionWrapHandler) -> Any:
        # absent, not null, on figures without the notion: their answers stay as they were
        data = handler(self)
        if isinstance(data, dict) and data.get("undecided") is None:
            data.pop("undecided", None)
        return data


class Provenance(BaseModel):
    as_of: datetime | None = Field(
        description="The ingest instant asked for; null means the live state"
    )
    watermark: datetime | None = Field(description="Newest ingest time among the events used")
    events: int = Field(description="Distinct events behind the figure")
    rule_set: str = Field(description="Rule set (name@version) that classified the items")
    calendar: str = Field(description="Working-day calendar version (year files)")
    org_tree: str = Field(description="Org tree version the agency filter was expanded with")
    computed_at: datetime | None = Field(
        default=None,
        description="When the figure was read from the store (the as_of instant when given): "
        "what a board states as its freshness",
    )


class MetricResult(BaseModel):
    metric: str
    label: str
    period_from: date
    period_to: date
    judged_at: datetime = Field(description="Open items are judged at this instant")
    group_by: str | None
    agency: list[str]
    domain: list[str]
    level: list[str]
    groups: list[MetricGroup]
    provenance: Provenance


class DeadLetterOut(BaseModel):
    dead_lettered_at: datetime
    subject: str
    stream_seq: int
    agency_code: str
    integrator: str = Field(description="The subject's agency token (who published it)")
    source: str
    event_id: str | None
    reason: str
    detail: str
    raw_preview: str = Field(
        description="The first 512 bytes as text (invalid UTF-8 shown as U+FFFD); the whole "
        "bytes, verbatim, from `raw_url`"
    )
    raw_bytes: int = Field(description="How many bytes were refused; 0 once expired")
    raw_url: str = Field(description="Where to download the original bytes (auditor)")
    raw_expired: bool = Field(description="The bytes were blanked by the retention TTL")
    replayed: bool = Field(description="`motcua dlq replay` republished it or found it stored")


class DeadLetterDay(BaseModel):
    day: date = Field(description="Day dead-lettered, Asia/Ho_Chi_Minh")
    integrator: str
    reason: str
    dead_letters: int
    replayed: int
    sources: list[str] = Field(description="Publishing systems named in readable payloads")
    last_at: datetime


class DeadLetterSummary(BaseModel):
    period_from: date | None
    period_to: date | None
    total: int
    by_integrator: dict[str, int]
    by_reason: dict[str, int]
    days: list[DeadLetterDay]
