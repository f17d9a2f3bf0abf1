"""Writes reference rows and their dead letters to ClickHouse (blocking; called from a thread).

A record already stored (same event_id) is skipped, not inserted again: a redelivered older
version must not come back with a newer ingested_at and win over a version stored after it.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from core.ingestion.processor import DEAD_LETTER_COLUMNS, DeadLetter, MessageMeta
from core.ingestion.reference import COLUMNS, ReferenceRow
from core.ingestion.writer import StoreUnavailable, dead_letters_missing
from core.storage.clickhouse import takes_writes
from schemas.subjects import REFERENCE_DEAD_LETTER_AGENCY

log = logging.getLogger(__name__)

_INSERT_SETTINGS = {"async_insert": 0}


@dataclass
class ReferenceWriteResult:
    stored: int = 0
    duplicates: int = 0  # same event_id already stored, or repeated in the batch
    superseded: int = 0  # same (code, valid_from) later in the same batch: only the last is kept
    refused: list[DeadLetter] = field(default_factory=list)  # ClickHouse refused the row


class ReferenceWriter:
    def __init__(self, client: Client) -> None:
        self._client = client

    def healthy(self) -> bool:
        return takes_writes(self._client, "reference")

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
            keys = sorted(f"ref-dl:{d.meta.stream_seq}:{d.meta.subject}" for d in missing)
            token = f"{_token(keys)}:{uuid.uuid4().hex}"
            self._insert("dead_letters", [d.values() for d in missing], DEAD_LETTER_COLUMNS, token)
        return result

    def _write_table(
        self, table: str, rows: list[ReferenceRow], result: ReferenceWriteResult
    ) -> None:
        if not rows:
            return
        known = self._stored_event_ids(table, sorted({r.event_id for r in rows}))
        fresh: dict[tuple[Any, ...], ReferenceRow] = {}
        seen: set[str] = set()
        for row in rows:
            if row.event_id in known or row.event_id in seen:
                result.duplicates += 1
                continue
            seen.add(row.event_id)
            if row.key in fresh:
                result.superseded += 1
                del fresh[row.key]  # re-added below, so the dict keeps stream order
            fresh[row.key] = row
        batch = list(fresh.values())
        if not batch:
            return
        token = _token([f"{table}:{r.event_id}" for r in batch])
        try:
            self._insert(table, [r.values for r in batch], COLUMNS[table], token)
            result.stored += len(batch)
        except StoreUnavailable:
            raise
        except Exception:
            # The store is up but refused the block: find the row(s) at fault, one by one.
            for row in batch:
                try:
                    self._insert(table, [row.values], COLUMNS[table], _token([row.event_id]))
                    result.stored += 1
                except StoreUnavailable:
                    raise
                except Exception as exc:
                    result.refused.append(_refused(row, exc))

    def _stored_event_ids(self, table: str, event_ids: list[str]) -> set[str]:
        try:
            found = self._client.query(
                f"SELECT DISTINCT toString(event_id) FROM {table} "
                "WHERE event_id IN {ids:Array(UUID)}",
                parameters={"ids": event_ids},
            ).result_rows
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        return {r[0] for r in found}

    def _insert(
        self, table: str, data: Sequence[Sequence[Any]], columns: Sequence[str], token: str
    ) -> None:
        settings = {**_INSERT_SETTINGS, "insert_deduplication_token": token}
        try:
            self._client.insert(table, data, column_names=list(columns), settings=settings)
        except Exception as exc:
            if not self.healthy():
                raise StoreUnavailable(str(exc)) from exc
            raise


def _refused(row: ReferenceRow, exc: Exception) -> DeadLetter:
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


def _token(keys: Sequence[str]) -> str:
    """A dedup token from the sorted identities, so a retried batch is recognised."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
