"""Writes both streams' batches to ClickHouse: events (and their ids) or reference rows, then the
dead letters, with one insert path (settings, dedup token, StoreUnavailable when the store is
down) and the streams' differences as data: the table(s), the columns, the token's identities,
what a refused row becomes.

Blocking by design (the chDB backend has no async client): callers run it in a thread. The dedup
layers it takes part in (stored ids, redelivery lookup, tokens) are described in dedup.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.client import Client

from core.ingestion.common import DEAD_LETTER_COLUMNS, DeadLetter, StoreUnavailable
from core.ingestion.dedup import batch_token, dead_letters_missing, fresh, new_versions, token_of
from core.ingestion.processor import EVENT_COLUMNS, EventRow
from core.ingestion.reference import COLUMNS, ReferenceRow, refused_letter
from core.storage.clickhouse import takes_writes
from core.storage.replay import refeed

# Client-side batching already gives large blocks; async inserts would only add a second buffer
# whose loss we could not see.
_INSERT_SETTINGS = {"async_insert": 0}
# One thread: a lookup reads one small granule per id, which more threads only slice finer while
# taking the ingest's CPU (measured: about half the time of the default on 2 cores).
_LOOKUP_SETTINGS = {"max_threads": 1}
ID_COLUMNS = ("key", "digest")


class _Writer:
    """What both writers share: the client, the health probe, the insert, the lookups."""

    probe = "ingest"  # the name its write probe (takes_writes) goes by

    def __init__(self, client: Client) -> None:
        self._client = client

    def healthy(self) -> bool:
        return takes_writes(self._client, self.probe)

    def _query(
        self, sql: str, parameters: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        """A lookup's rows; StoreUnavailable when the store cannot answer."""
        try:
            rows: Sequence[Sequence[Any]] = self._client.query(
                sql, parameters=parameters, settings=settings
            ).result_rows
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        return rows

    def _insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        columns: Sequence[str],
        token: str,
        *,
        column_oriented: bool = False,
    ) -> None:
        settings = {**_INSERT_SETTINGS, "insert_deduplication_token": token}
        try:
            self._client.insert(
                table,
                data,
                column_names=list(columns),
                settings=settings,
                column_oriented=column_oriented,
            )
        except Exception as exc:
            if not self.healthy():
                raise StoreUnavailable(str(exc)) from exc
            raise


@dataclass
class WriteResult:
    stored: int = 0
    rejected: list[tuple[EventRow, str]] = field(default_factory=list)


class EventWriter(_Writer):
    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self._has_ids = False  # event_ids seen in the store (migration 0029); once seen, it stays

    def stored_payloads(self, event_ids: Sequence[str]) -> dict[str, str]:
        """event_id → stored payload of these events found in the raw table. Only asked for
        redelivered messages, so the bloom-filter lookup stays off the hot path."""
        if not event_ids:
            return {}
        rows = self._query(
            "SELECT toString(event_id), any(payload) FROM events "
            "WHERE event_id IN {ids:Array(UUID)} GROUP BY event_id",
            {"ids": list(event_ids)},
        )
        return {r[0]: r[1] for r in rows}

    def dead_letter_bytes_since(self, since: datetime) -> dict[str, int]:
        """Refused bytes the store keeps per integrator since `since` (core/ingestion/quota)."""
        rows = self._query(
            "SELECT agency_code, sum(length(raw)) FROM dead_letters "
            "WHERE dead_lettered_at >= {since:DateTime64(3, 'UTC')} "
            "AND published_at >= {since:DateTime64(3, 'UTC')} - INTERVAL 7 DAY "
            "GROUP BY agency_code",
            {"since": since},
        )
        return {str(code): int(n) for code, n in rows}

    def stored_digests(self, event_ids: Sequence[UUID]) -> dict[str, bytes]:
        """event_id → MD5 of the stored payload, for those of these events already stored.

        Asked for every first delivery the recent memory does not know, so it answers from the
        small `event_ids` table (migration 0029), sorted by id: one granule per id, whatever the
        history. Every ingest process asks the same table, so what one stored, all know."""
        if not event_ids:
            return {}
        rows = self._query(
            "SELECT key, any(digest) FROM event_ids "
            "WHERE key IN {keys:Array(UInt128)} GROUP BY key",
            {"keys": sorted({e.int for e in event_ids})},
            _LOOKUP_SETTINGS,
        )
        return {str(UUID(int=int(key))): bytes(digest) for key, digest in rows}

    def refold(self, event_ids: Sequence[str]) -> int:
        """Run the views fed by the events log again over these stored events; returns the
        views run.

        An insert reaches `events` 50-200 ms before the materialized views fed from it (state,
        rollups) commit theirs; a crash or a store failure in between leaves events stored but
        never folded, their messages unacked. The views' tables hold idempotent aggregates
        without a dedup window (migrations 0024, 0027): running a view again changes nothing but
        the parts' `folded_at` (dedup.py, layers 4 and 5).
        """
        if not event_ids:
            return 0
        try:
            return refeed(self._client, "event_id IN {ids:Array(UUID)}", {"ids": list(event_ids)})
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def write(self, rows: Sequence[EventRow], dead: Sequence[DeadLetter]) -> WriteResult:
        """Insert events, then dead letters. Raises StoreUnavailable when the store is down.

        A row that ClickHouse itself refuses while the store is healthy is isolated by bisection
        and returned in `rejected`, so one bad value cannot block the batch behind it.
        """
        result = WriteResult()
        self._insert_events(list(rows), result)
        self.insert_dead_letters(dead)
        return result

    def write_again(
        self, rows: Sequence[EventRow], dead: Sequence[DeadLetter], tried: set[str]
    ) -> WriteResult:
        """Write a batch whose earlier write failed: store what is missing, finish what is not.

        The plain retry (same insert, same token) is not enough: the engine may hold the token's
        hash without the part (dedup.py, layer 6). So the views are run again over the events
        found stored (`refold`), the rest are inserted under a token no earlier attempt used
        (`tried`, updated here); the same for the dead letters. Raises StoreUnavailable when
        the store is down.
        """
        tried.update([batch_token(rows), batch_token(dead)])
        stored = set(self.stored_payloads([str(r.event.event_id) for r in rows]))
        self.refold(list(stored))
        missing = [r for r in rows if str(r.event.event_id) not in stored]
        result = WriteResult(stored=len(rows) - len(missing))
        if missing:
            self._insert_events(missing, result, fresh(batch_token(missing), tried))
        self.insert_dead_letters(dead_letters_missing(self._client, dead), tried)
        return result

    def insert_dead_letters(
        self, dead: Sequence[DeadLetter], tried: set[str] | None = None
    ) -> None:
        if dead:
            token = batch_token(dead) if tried is None else fresh(batch_token(dead), tried)
            self._insert("dead_letters", [d.values() for d in dead], DEAD_LETTER_COLUMNS, token)

    def _insert_events(
        self, rows: list[EventRow], result: WriteResult, token: str | None = None
    ) -> None:
        if not rows:
            return
        # Column-oriented: clickhouse-connect then serialises each column in one pass instead
        # of transposing the rows itself (measured ~20% less CPU per batch).
        columns = list(zip(*(r.values for r in rows), strict=True))
        token = token or batch_token(rows)
        try:
            # The ids first: an event stored is then always known to the lookup of every ingest
            # process (stored_digests); an id whose event insert failed stays unacked and its
            # redelivery is checked against `events` itself.
            if self._ids_table():
                ids: list[list[Any]] = [
                    [r.event.event_id.int for r in rows],
                    [r.digest for r in rows],
                ]
                self._insert("event_ids", ids, ID_COLUMNS, token, column_oriented=True)
            self._insert("events", columns, EVENT_COLUMNS, token, column_oriented=True)
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

    def _ids_table(self) -> bool:
        """Whether the store has `event_ids`: only a test's store migrated up to an earlier
        version has not (migration 0029 then fills the ids of what was written meanwhile); the
        ingest migrates at its start, and its lookup (stored_digests) needs the table."""
        if not self._has_ids:
            try:
                self._has_ids = bool(self._client.command("EXISTS TABLE event_ids"))
            except Exception as exc:
                raise StoreUnavailable(str(exc)) from exc
        return self._has_ids


@dataclass
class ReferenceWriteResult:
    stored: int = 0
    duplicates: int = 0  # same event_id already stored, or repeated in the batch
    superseded: int = 0  # same (code, valid_from) later in the same batch: only the last is kept
    refused: list[DeadLetter] = field(default_factory=list)  # ClickHouse refused the row


class ReferenceWriter(_Writer):
    """A record already stored (same event_id) is skipped (dedup.py, layer 3)."""

    probe = "reference"

    def write(
        self, rows: Sequence[ReferenceRow], dead: Sequence[DeadLetter]
    ) -> ReferenceWriteResult:
        """Insert the new rows (in stream order), then the dead letters.

        Raises StoreUnavailable when ClickHouse cannot take writes: nothing should be acked.
        """
        result = ReferenceWriteResult()
        for table in COLUMNS:
            self._write_table(table, [r for r in rows if r.table == table], result)
        # The dead letters table dedups inserts (the reference tables do not): an attempt whose
        # part was lost at its rename leaves its hash in the dedup log (migration 0027), so a
        # retry leaves out what is stored and takes a token no attempt used.
        missing = dead_letters_missing(self._client, dead)
        if missing:
            keys = [f"ref-dl:{d.meta.stream_seq}:{d.meta.subject}" for d in missing]
            token = f"{token_of(keys)}:{uuid.uuid4().hex}"
            self._insert("dead_letters", [d.values() for d in missing], DEAD_LETTER_COLUMNS, token)
        return result

    def _write_table(
        self, table: str, rows: list[ReferenceRow], result: ReferenceWriteResult
    ) -> None:
        if not rows:
            return
        found = self._query(
            f"SELECT DISTINCT toString(event_id) FROM {table} "
            "WHERE event_id IN {ids:Array(UUID)}",
            {"ids": sorted({r.event_id for r in rows})},
        )
        batch, duplicates, superseded = new_versions(
            rows, {r[0] for r in found}, lambda r: r.event_id, lambda r: r.key
        )
        result.duplicates += duplicates
        result.superseded += superseded
        if not batch:
            return
        token = token_of(f"{table}:{r.event_id}" for r in batch)
        try:
            self._insert(table, [r.values for r in batch], COLUMNS[table], token)
            result.stored += len(batch)
        except StoreUnavailable:
            raise
        except Exception:
            # The store is up but refused the block: find the row(s) at fault, one by one.
            for row in batch:
                try:
                    self._insert(table, [row.values], COLUMNS[table], token_of([row.event_id]))
                    result.stored += 1
                except StoreUnavailable:
                    raise
                except Exception as exc:
                    result.refused.append(refused_letter(row, exc))
