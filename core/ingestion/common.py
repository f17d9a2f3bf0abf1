"""What the two streams' ingest paths share: a message's metadata, a dead letter, why a payload
was refused, how a value becomes a column value, and the store's "not now" (StoreUnavailable).

Pure and light: no I/O, no clock, and nothing heavy imported at run time (`motcua dlq --help`
loads the processors, tests/test_cli_imports.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from schemas.v1.strict_json import may_repeat, repeated_key

if TYPE_CHECKING:
    from nats.aio.msg import Msg

DEAD_LETTER_COLUMNS: tuple[str, ...] = (
    "subject",
    "stream_seq",
    "published_at",
    "agency_code",
    "source",
    "event_id",
    "reason",
    "detail",
    "raw",
)


class StoreUnavailable(Exception):
    """ClickHouse cannot take writes right now: retry later, never dead-letter."""


@dataclass(frozen=True, slots=True)
class MessageMeta:
    subject: str
    stream_seq: int
    published_at: datetime


def meta_of(msg: Msg) -> MessageMeta:
    """The metadata of a JetStream message, as nats-py parses it."""
    md = msg.metadata
    return MessageMeta(msg.subject, md.sequence.stream, md.timestamp or datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    meta: MessageMeta
    agency_code: str
    reason: str
    detail: str
    raw: bytes
    source: str = ""
    event_id: str | None = None

    def values(self) -> tuple[Any, ...]:
        return (
            self.meta.subject,
            self.meta.stream_seq,
            self.meta.published_at,
            self.agency_code,
            self.source,
            self.event_id,
            self.reason,
            self.detail,
            # Verbatim: a String column holds any bytes, and a replay after a fix must parse
            # exactly what the integrator sent (invalid UTF-8 included).
            bytes(self.raw),
        )


def column_value(value: Any) -> Any:
    """A model field's value as its column takes it (both streams' rows)."""
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if kind is bool:
        return int(value)
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, Enum):  # StrEnum members are stored as their text
        return value._value_  # what .value returns, without the descriptor's cost
    if isinstance(value, list):  # a reference record's levels
        return [column_value(v) for v in value]
    return value


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def repeated_detail(raw: bytes, parsed: BaseModel | None, reason: str = "") -> str | None:
    """Why `raw` is refused for a key it repeats (schemas/v1/strict_json.py), or None.
    `parsed`: what the models made of it; None: they refused it for `reason`, and a repeat is
    then looked for in an object refused for its fields only (the other reasons are what is
    wrong with it, and a repeat may be why a field is wrong)."""
    if parsed is not None:
        if not may_repeat(raw, len(parsed.model_fields_set)):
            return None
    elif reason not in ("invalid_field", "unknown_type"):
        return None
    key = repeated_key(raw)
    if key is None:
        return None
    return (
        f"the key {key!r} appears twice in one object: the contract refuses repeated keys "
        "(parsers disagree on which one counts)"
    )


def classify(exc: ValidationError) -> tuple[str, str]:
    """(dead-letter reason, detail) of a payload the contract refused; reference data too."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"type": "unknown", "loc": (), "msg": str(exc)}
    kind = first["type"]
    if kind == "json_invalid" and "recursion limit exceeded" in first["msg"]:
        reason = "too_deep"
    elif kind == "json_invalid":
        reason = "invalid_json"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        reason = "unknown_type"
    elif kind in ("model_attributes_type", "dict_type"):
        reason = "not_an_object"
    else:
        reason = "invalid_field"
    detail = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:10]
    )
    if len(errors) > 10:
        detail += f"; … and {len(errors) - 10} more"
    return reason, detail or str(exc)
