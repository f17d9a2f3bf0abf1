"""The pure processor of reference data: message bytes + metadata in, one row or one dead letter.

Reference records (schemas/v1/reference.py: agencies, procedures) take the same path as events,
through their own processor: no I/O, no clock, so the same message always yields the same row.
The subscriber that feeds it is core/ingestion/subscriber.py, the writer core/ingestion/writer.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError

from core.ingestion.common import (
    DeadLetter,
    MessageMeta,
    classify,
    column_value,
    repeated_detail,
    utc,
)
from schemas.subjects import (
    MAX_EVENT_BYTES,
    REFERENCE_DEAD_LETTER_AGENCY,
    parse_reference_subject,
    reference_token,
)
from schemas.v1.reference import (
    AgencyReference,
    ReferenceEvent,
    parse_reference,
    reference_code,
)

AGENCIES_TABLE = "agencies"
PROCEDURES_TABLE = "procedures"
# Insert column order (ingested_at is filled by ClickHouse); a drift test ties these to the tables.
_PROVENANCE = ("event_id", "occurred_at", "source", "payload", "subject", "stream_seq")
AGENCY_COLUMNS: tuple[str, ...] = (
    "agency_code",
    "valid_from",
    "valid_to",
    "name",
    "level",
    "parent_code",
    *_PROVENANCE,
    "published_at",
)
PROCEDURE_COLUMNS: tuple[str, ...] = (
    "procedure_code",
    "valid_from",
    "valid_to",
    "name",
    "domain_code",
    "processing_days",
    "processing_unit",
    "fee_bearing",
    "paper_result_required",
    "online_level",
    "full_online_eligible",
    "online_payment_integrated",
    "levels",
    "decision_date",
    "legal_basis_effective_date",
    "public_in_national_db_at",
    "parts_complete",
    *_PROVENANCE,
    "published_at",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    AGENCIES_TABLE: AGENCY_COLUMNS,
    PROCEDURES_TABLE: PROCEDURE_COLUMNS,
}


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    record: ReferenceEvent
    table: str  # agencies | procedures
    values: tuple[Any, ...]  # in COLUMNS[table] order
    raw: bytes  # the message as received, for a dead letter should the store refuse the row

    @property
    def event_id(self) -> str:
        return str(self.record.event_id)

    @property
    def key(self) -> tuple[str, date]:
        """(code, valid_from): a record with the same key replaces the earlier one."""
        return reference_code(self.record), self.record.valid_from


def process_reference(raw: bytes, meta: MessageMeta) -> ReferenceRow | DeadLetter:
    """Validate one reference message and turn it into a row, or say why not. No I/O, no clock."""

    def refuse(reason: str, detail: str, record: ReferenceEvent | None = None) -> DeadLetter:
        return DeadLetter(
            meta=meta,
            agency_code=REFERENCE_DEAD_LETTER_AGENCY,
            reason=reason,
            detail=detail,
            raw=raw,
            source=record.source if record else "",
            event_id=str(record.event_id) if record else None,
        )

    if len(raw) > MAX_EVENT_BYTES:
        return refuse("oversized", f"{len(raw)} bytes; the limit is {MAX_EVENT_BYTES}")
    parts = parse_reference_subject(meta.subject)
    if parts is None:
        return refuse(
            "bad_subject",
            f"subject {meta.subject!r} is not motcua.reference.<agency|procedure>.<code>",
        )
    try:
        record = parse_reference(raw)
    except ValidationError as exc:
        reason, detail = classify(exc)
        if (repeat := repeated_detail(raw, None, reason)) is not None:
            return refuse("invalid_json", repeat)
        return refuse(reason, detail)
    if (repeat := repeated_detail(raw, record)) is not None:
        return refuse("invalid_json", repeat, record)
    if record.type != f"reference.{parts.kind}":
        return refuse(
            "type_mismatch", f"payload type {record.type!r} ≠ subject kind {parts.kind!r}", record
        )
    code = reference_code(record)
    if reference_token(code) != parts.token:
        return refuse(
            "code_mismatch",
            f"payload code {code!r} ≠ subject code {parts.token!r} (dots become '_')",
            record,
        )
    return to_row(record, meta, raw)


def to_row(record: ReferenceEvent, meta: MessageMeta, raw: bytes) -> ReferenceRow:
    table = AGENCIES_TABLE if isinstance(record, AgencyReference) else PROCEDURES_TABLE
    fields = record.__dict__
    provenance = {
        "event_id": record.event_id,
        "occurred_at": utc(record.occurred_at),
        "payload": record.model_dump_json(),
        "subject": meta.subject,
        "stream_seq": meta.stream_seq,
        "published_at": utc(meta.published_at),
    }
    values = tuple(
        provenance[c] if c in provenance else column_value(fields[c]) for c in COLUMNS[table]
    )
    return ReferenceRow(record=record, table=table, values=values, raw=raw)


def refused_letter(row: ReferenceRow, exc: Exception) -> DeadLetter:
    """The dead letter of a row the store itself refused (`storage_refused`)."""
    values = dict(zip(COLUMNS[row.table], row.values, strict=True))
    return DeadLetter(
        meta=MessageMeta(values["subject"], values["stream_seq"], values["published_at"]),
        agency_code=REFERENCE_DEAD_LETTER_AGENCY,
        reason="storage_refused",
        detail=f"storage refused the record: {exc}"[:2000],
        raw=row.raw,
        source=row.record.source,
        event_id=row.event_id,
    )
