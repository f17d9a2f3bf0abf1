"""Writes a flushed batch to ClickHouse: events in one insert, dead letters in another.

Blocking by design (the chDB backend has no async client): the consumer calls it from a thread.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from services.ingest.processor import DEAD_LETTER_COLUMNS, EVENT_COLUMNS, DeadLetter, EventRow

log = logging.getLogger(__name__)

# Client-side batching already gives large blocks; async inserts would only add a second buffer
# whose loss we could not see.
_INSERT_SETTINGS = {"async_insert": 0}


class StoreUnavailable(Exception):
    """ClickHouse cannot take writes right now: retry later, never dead-letter."""


@dataclass
class WriteResult:
    stored: int = 0
    rejected: list[tuple[EventRow, str]] = field(default_factory=list)


class EventWriter:
    def __init__(self, client: Client) -> None:
        self._client = client

    def healthy(self) -> bool:
        try:
            self._client.query("SELECT 1")
        except Exception:
            return False
        return True

    def stored_payloads(self, event_ids: Sequence[str]) -> dict[str, str]:
        """event_id → stored payload for those of these events already in the raw table.

        Only asked for redelivered messages, so the bloom-filter lookup stays off the hot path.
        """
        if not event_ids:
            return {}
        try:
            rows = self._client.query(
                "SELECT toString(event_id), any(payload) FROM events "
                "WHERE event_id IN {ids:Array(UUID)} GROUP BY event_id",
                parameters={"ids": list(event_ids)},
            ).result_rows
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        return {r[0]: r[1] for r in rows}

    def write(self, rows: Sequence[EventRow], dead: Sequence[DeadLetter]) -> WriteResult:
        """Insert events, then dead letters. Raises StoreUnavailable when the store is down.

        A row that ClickHouse itself refuses while the store is healthy is isolated by bisection
        and returned in `rejected`, so one bad value cannot block the batch behind it.
        """
        result = WriteResult()
        self._insert_events(list(rows), result)
        self.insert_dead_letters(dead)
        return result

    def insert_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        if dead:
            self._insert(
                "dead_letters", [d.values() for d in dead], DEAD_LETTER_COLUMNS, _token(dead)
            )

    def _insert_events(self, rows: list[EventRow], result: WriteResult) -> None:
        if not rows:
            return
        try:
            self._insert("events", [r.values for r in rows], EVENT_COLUMNS, _token(rows))
            result.stored += len(rows)
        except StoreUnavailable:
            raise
        except Exception as exc:
            if len(rows) == 1:
                result.rejected.append((rows[0], f"storage refused the event: {exc}"[:2000]))
                return
            middle = len(rows) // 2
            self._insert_events(rows[:middle], result)
            self._insert_events(rows[middle:], result)

    def _insert(
        self, table: str, rows: list[tuple[Any, ...]], columns: Sequence[str], token: str
    ) -> None:
        settings = {**_INSERT_SETTINGS, "insert_deduplication_token": token}
        try:
            self._client.insert(table, rows, column_names=list(columns), settings=settings)
        except Exception as exc:
            if not self.healthy():
                raise StoreUnavailable(str(exc)) from exc
            raise


def _token(items: Sequence[EventRow] | Sequence[DeadLetter]) -> str:
    """A dedup token from the sorted identities, so a retried batch is recognised even when
    JetStream regroups the redelivered messages differently."""
    keys = sorted(
        str(i.event.event_id) if isinstance(i, EventRow) else f"dl:{i.meta.stream_seq}"
        for i in items
    )
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()
