"""A dossier's or feedback item's trail: every stored event of it, in order, with where it came
from (GET /v1/dossiers/{id}/events, /v1/feedback/{id}/events)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from clickhouse_connect.driver.client import Client

# At most this many events per trail.
MAX_EVENTS = 10_000


class StoredEvent(NamedTuple):
    """One stored event (instants as stored: naive UTC; payload: JSON text)."""

    event_id: str
    type: str
    occurred_at: datetime
    agency_code: str
    source: str
    payload: str
    subject: str
    stream_seq: int
    published_at: datetime
    ingested_at: datetime


_SQL = f"""
SELECT toString(event_id), type, occurred_at, agency_code, source, payload, subject, stream_seq,
       published_at, ingested_at
FROM events FINAL
WHERE entity = {{entity:String}} AND entity_id = {{id:String}}
  AND ({{agency:Nullable(String)}} IS NULL OR agency_code = {{agency:Nullable(String)}})
  AND ({{as_of:Nullable(DateTime64(3, 'UTC'))}} IS NULL
       OR ingested_at <= {{as_of:Nullable(DateTime64(3, 'UTC'))}})
ORDER BY occurred_at, stream_seq, event_id
LIMIT {MAX_EVENTS}
"""


def trail(
    client: Client,
    entity: Literal["dossier", "feedback"],
    id: str,
    agency: str | None,
    as_of: datetime | None,
) -> list[StoredEvent]:
    """The item's events in the order they happened; only those of `agency` when given, only
    those ingested by `as_of` when given (an instant DateTime64(3) can hold)."""
    rows = client.query(
        _SQL, parameters={"entity": entity, "id": id, "agency": agency, "as_of": as_of}
    ).result_rows
    return [StoredEvent(*r) for r in rows]
