"""What the API reports of the ingest's own health (GET /v1/pipeline) and of its dead letters
(GET /v1/dead-letters, …/summary, …/{seq}/raw): typed rows, the SQL kept here, below the routes.

The integrator of a dead letter is its subject's agency token (core/storage/migrations/
0014_dead_letters_by_integrator.sql): known even when the bytes are not JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from clickhouse_connect.driver.client import Client


class LastHour(NamedTuple):
    events: int
    distinct_events: int
    last_ingested_at: datetime
    median_publish_to_stored_ms: float


@dataclass(frozen=True, slots=True)
class ReasonCount:
    agency_code: str
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class PipelineCounts:
    events_stored: int
    last_hour: LastHour
    dead_letters: list[ReasonCount]  # every dead letter by agency and reason


def pipeline_counts(client: Client) -> PipelineCounts:
    last_hour = client.query(
        "SELECT count(), uniqExact(event_id), max(ingested_at), "
        "quantileExact(0.5)(dateDiff('millisecond', published_at, ingested_at)) "
        "FROM events WHERE ingested_at > now64(3) - INTERVAL 1 HOUR"
    ).result_rows[0]
    # The raw table's row count, which the engine answers from its parts' metadata. FINAL made it
    # a merge of the whole history on every call (5.2 s at 50 million events). The ingest
    # stores an event once (its dedup layers; the fault suite counts raw rows against the
    # stream), so the rows are the events; a copy that slipped through would show here until
    # the table's merge drops it.
    total = client.query("SELECT count() FROM events").result_rows[0][0]
    reasons = client.query(
        "SELECT agency_code, reason, count() FROM dead_letters FINAL GROUP BY ALL ORDER BY ALL"
    ).result_rows
    return PipelineCounts(total, LastHour(*last_hour), [ReasonCount(*r) for r in reasons])


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters: of one integrator, for one reason, dead-lettered in [start, end)
    (UTC instants); None: any."""

    integrator: str | None = None
    reason: str | None = None
    start: datetime | None = None
    end: datetime | None = None


_FILTER = (
    "({agency:Nullable(String)} IS NULL OR agency_code = {agency:Nullable(String)}) "
    "AND ({reason:Nullable(String)} IS NULL OR reason = {reason:Nullable(String)}) "
    "AND ({start:Nullable(DateTime64(3, 'UTC'))} IS NULL "
    "     OR dead_lettered_at >= {start:Nullable(DateTime64(3, 'UTC'))}) "
    "AND ({end:Nullable(DateTime64(3, 'UTC'))} IS NULL "
    "     OR dead_lettered_at < {end:Nullable(DateTime64(3, 'UTC'))})"
)


class DeadLetterRow(NamedTuple):
    """One dead letter as listed: its first bytes only (instants as stored: naive UTC)."""

    dead_lettered_at: datetime
    subject: str
    stream_seq: int
    agency_code: str
    source: str
    event_id: str
    reason: str
    detail: str  # its first `detail_chars` characters
    preview: bytes  # its first `preview_bytes` bytes
    raw_bytes: int  # 0 once the bytes expired
    replayed: int  # 1 when it was replayed


_LIST = (
    "SELECT d.dead_lettered_at, d.subject, d.stream_seq, d.agency_code, d.source, "
    "toString(d.event_id), d.reason, leftUTF8(d.detail, {detail:UInt32}), "
    "substring(d.raw, 1, {preview:UInt32}) AS preview, length(d.raw), "
    "(d.subject, d.stream_seq, d.published_at) IN "
    "(SELECT subject, stream_seq, published_at FROM dead_letter_replays) "
    "FROM dead_letters AS d FINAL "
    f"WHERE {_FILTER} "
    "ORDER BY d.dead_lettered_at DESC, d.stream_seq DESC LIMIT {limit:UInt32}"
)


def dead_letters(
    client: Client, which: DeadLetterFilter, limit: int, preview_bytes: int, detail_chars: int
) -> list[DeadLetterRow]:
    """The newest `limit` dead letters that `which` selects, newest first."""
    rows = client.query(
        _LIST,
        parameters={
            "agency": which.integrator,
            "reason": which.reason,
            "start": which.start,
            "end": which.end,
            "limit": limit,
            "preview": preview_bytes,
            "detail": detail_chars,
        },
        column_formats={"preview": "bytes"},
    ).result_rows
    return [DeadLetterRow(*r) for r in rows]


def dead_letter_raw(client: Client, subject: str, stream_seq: int) -> bytes | None:
    """One letter's original bytes (its latest copy), None when there is no such letter."""
    rows = client.query(
        "SELECT raw FROM dead_letters FINAL "
        "WHERE subject = {subject:String} AND stream_seq = {seq:UInt64} "
        "ORDER BY published_at DESC LIMIT 1",
        parameters={"subject": subject, "seq": stream_seq},
        column_formats={"raw": "bytes"},
    ).result_rows
    return bytes(rows[0][0]) if rows else None


class DeadLetterDayRow(NamedTuple):
    """Dead letters of one day, integrator and reason (last_at: naive UTC)."""

    day: date
    integrator: str
    reason: str
    dead_letters: int
    replayed: int
    sources: list[str]
    last_at: datetime


def dead_letter_days(
    client: Client,
    integrator: str | None,
    reason: str | None,
    first: date | None,
    last: date | None,
) -> list[DeadLetterDayRow]:
    """Per day (Vietnam), integrator and reason, newest day first; None: any."""
    rows = client.query(
        "SELECT day, integrator, reason, dead_letters, replayed, sources, last_at "
        "FROM dead_letters_daily "
        "WHERE ({agency:Nullable(String)} IS NULL OR integrator = {agency:Nullable(String)}) "
        "AND ({reason:Nullable(String)} IS NULL OR reason = {reason:Nullable(String)}) "
        "AND ({from:Nullable(Date32)} IS NULL OR day >= {from:Nullable(Date32)}) "
        "AND ({to:Nullable(Date32)} IS NULL OR day <= {to:Nullable(Date32)}) "
        "ORDER BY day DESC, integrator, reason",
        parameters={"agency": integrator, "reason": reason, "from": first, "to": last},
    ).result_rows
    return [DeadLetterDayRow(*r) for r in rows]
