"""The pure heart of ingest: message bytes + metadata in, one event row or one dead letter out.

No I/O and no clock: every time comes from the event or the message metadata, so the same message
always yields the same row (tested).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

# What both streams share; DeadLetter and MessageMeta are also what this processor answers with.
from core.ingestion.common import (
    DeadLetter,
    MessageMeta,
    classify,
    column_value,
    repeated_detail,
    utc,
)
from schemas.subjects import MAX_EVENT_BYTES, parse_subject
from schemas.v1.events import DossierEvent, Event, FeedbackEvent, ManifestDaily, parse_event

# Insert column order of the `events` table (ingested_at is filled by ClickHouse). A drift test
# ties this tuple to the table definition.
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "type",
    "schema_version",
    "occurred_at",
    "agency_code",
    "source",
    "entity",
    "entity_id",
    "procedure_code",
    "domain_code",
    "level",
    "channel",
    "received_at",
    "due_at",
    "fee_required",
    "paper_result_required",
    "outcome",
    "e_result",
    "new_due_at",
    "amount_vnd",
    "rating",
    "filed_at",
    "topic",
    "payload",
    "subject",
    "stream_seq",
    "published_at",
)
# where to_row puts the payload and the message's provenance
PAYLOAD = EVENT_COLUMNS.index("payload")
SUBJECT = EVENT_COLUMNS.index("subject")
STREAM_SEQ = EVENT_COLUMNS.index("stream_seq")
PUBLISHED_AT = EVENT_COLUMNS.index("published_at")
# the columns filled from the event type's own fields (NULL where a type has no such field)
_TYPED_FIELDS = EVENT_COLUMNS[EVENT_COLUMNS.index("procedure_code") : PAYLOAD]


@dataclass(frozen=True, slots=True)
class EventRow:
    event: Event
    values: tuple[Any, ...]  # in EVENT_COLUMNS order
    # payload_digest of its payload: what a copy is told apart by, in the ingest's memory and in
    # the store's id table (event_ids) alike
    digest: bytes

    @property
    def meta(self) -> MessageMeta:
        """The message the row was made from (its subject, stream sequence, JetStream time)."""
        v = self.values
        return MessageMeta(v[SUBJECT], v[STREAM_SEQ], v[PUBLISHED_AT])

    @property
    def payload(self) -> str:
        payload: str = self.values[PAYLOAD]
        return payload


def payload_digest(payload: str) -> bytes:
    """MD5 of a stored payload, as ClickHouse's MD5(payload) computes it (migration 0029): it
    only tells two payloads apart, nothing relies on it being secret."""
    return hashlib.md5(payload.encode(), usedforsecurity=False).digest()


def process(raw: bytes, meta: MessageMeta) -> EventRow | DeadLetter:
    """Validate one message against contract v1 and turn it into a row, or say why not."""
    parts = _subject_parts(meta.subject)
    agency = parts.agency_code if parts else ""

    def refuse(
        reason: str, detail: str, event: Event | None = None, source: str = ""
    ) -> DeadLetter:
        return DeadLetter(
            meta=meta,
            agency_code=agency,
            reason=reason,
            detail=detail,
            raw=raw,
            source=event.source if event else source,
            event_id=str(event.event_id) if event else None,
        )

    if len(raw) > MAX_EVENT_BYTES:
        return refuse("oversized", f"{len(raw)} bytes; the limit is {MAX_EVENT_BYTES}")
    if parts is None:
        return refuse(
            "bad_subject", f"subject {meta.subject!r} is not motcua.events.<agency>.<type>"
        )
    try:
        # pydantic's JSON parser (jiter) stops at 200 levels of nesting after reading at most
        # that many bytes, so a deeply nested payload costs microseconds and is refused as
        # too_deep below; no Python recursion is involved (bench/hostile_bench.py).
        event = parse_event(raw)
    except ValidationError as exc:
        reason, detail = classify(exc)
        if (repeat := repeated_detail(raw, None, reason)) is not None:
            return refuse("invalid_json", repeat, source=_source_of(raw))
        return refuse(reason, detail, source=_best_effort_source(raw, reason))
    if (repeat := repeated_detail(raw, event)) is not None:
        return refuse("invalid_json", repeat, event)
    if (bad := _unstorable_time(event)) is not None:
        return refuse("invalid_field", bad, event)
    if event.agency_code != parts.agency_code:
        return refuse(
            "agency_mismatch",
            f"payload agency_code {event.agency_code!r} ≠ subject agency {parts.agency_code!r}",
            event,
        )
    if event.type != parts.event_type:
        return refuse(
            "type_mismatch",
            f"payload type {event.type!r} ≠ subject type {parts.event_type!r}",
            event,
        )
    values = to_row(event, meta)
    return EventRow(event=event, values=values, digest=payload_digest(values[PAYLOAD]))


# A few dozen agency × type subjects carry all the traffic: split each once.
_subject_parts = lru_cache(maxsize=4096)(parse_subject)


def to_row(event: Event, meta: MessageMeta) -> tuple[Any, ...]:
    fields = event.__dict__
    typed: list[Any] = [None] * len(_TYPED_FIELDS)
    for i, name in _typed_layout(type(event)):
        typed[i] = column_value(fields[name])
    return (
        event.event_id,
        event.type,
        event.schema_version,
        utc(event.occurred_at),
        event.agency_code,
        event.source,
        *_entity(event),
        *typed,
        event.model_dump_json(),
        meta.subject,
        meta.stream_seq,
        utc(meta.published_at),
    )


def _entity(event: Event) -> tuple[str, str]:
    """(entity, entity_id) of an event: a dossier or feedback item by its id, a manifest by its
    day (YYYY-MM-DD), so the log keeps every manifest of an agency and day side by side."""
    if isinstance(event, DossierEvent):
        return "dossier", event.dossier_id
    if isinstance(event, FeedbackEvent):
        return "feedback", event.feedback_id
    assert isinstance(event, ManifestDaily)
    return "manifest", event.day.isoformat()


@cache
def _typed_layout(model: type[Any]) -> tuple[tuple[int, str], ...]:
    """(position in _TYPED_FIELDS, field name) of the typed columns this event type carries;
    the others stay NULL. Computed once per type: a row is built for every stored event."""
    return tuple((i, name) for i, name in enumerate(_TYPED_FIELDS) if name in model.model_fields)


# The storable range of DateTime64(3) in ClickHouse; Python's datetime also overflows when a
# year-1 or year-9999 time is moved to UTC. Outside it an event is refused, never crashes ingest.
_MIN_TIME = datetime(1900, 1, 2, tzinfo=UTC)
_MAX_TIME = datetime(2299, 12, 30, tzinfo=UTC)


def _unstorable_time(event: Event) -> str | None:
    for name, value in event.__dict__.items():
        if isinstance(value, datetime) and not (_MIN_TIME <= value <= _MAX_TIME):
            return f"{name}: {value.isoformat()} is outside 1900-01-02..2299-12-30"
    return None


def _best_effort_source(raw: bytes, reason: str) -> str:
    """The payload's `source` (the publishing system) when the JSON is an object that has one,
    so a dead letter is attributed to its integrator even when the event itself is invalid."""
    if reason not in ("invalid_field", "unknown_type"):
        return ""
    return _source_of(raw)


def _source_of(raw: bytes) -> str:
    try:
        data = from_json(raw)
    except ValueError:
        return ""
    source = data.get("source") if isinstance(data, dict) else None
    return source if isinstance(source, str) and 0 < len(source) <= 64 else ""
