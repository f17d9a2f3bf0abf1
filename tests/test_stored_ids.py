"""What the store answers about stored ids (migration 0029 `event_ids`, EventWriter.stored_digests):
the lookup every first delivery goes through, in place of a filter in each process's memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.client import Client

from core.ingestion.common import MessageMeta
from core.ingestion.processor import PAYLOAD, EventRow, payload_digest, process
from core.ingestion.writer import EventWriter
from core.storage.migrate import migrate
from tests.helpers import received
from tests.test_migrations import fresh_store
from tests.test_pipeline import d

AGENCY = "IDSTORE"


def rows(events: list[dict[str, Any]], first_seq: int) -> list[EventRow]:
    out = []
    for n, e in enumerate(events):
        meta = MessageMeta(
            f"motcua.events.{AGENCY}.{e['type']}", first_seq + n, datetime(2026, 3, 2, tzinfo=UTC)
        )
        row = process(json.dumps(e).encode(), meta)
        assert isinstance(row, EventRow)
        out.append(row)
    return out


def test_every_written_event_is_found_with_its_digest_and_no_other(clickhouse: Client) -> None:
    # Catches: ids written under a key the lookup does not compute (UUID.int against
    # toUInt128), a digest that differs from the one the ingest compares (every exact copy
    # would then be dead-lettered as conflicting), or a lookup that finds ids never stored.
    writer = EventWriter(clickhouse)
    stored = rows([received(AGENCY, f"S{i}", d(2), due=d(9)) for i in range(300)], 1)
    writer.write(stored, [])
    never = rows([received(AGENCY, f"N{i}", d(2), due=d(9)) for i in range(300)], 1_000)
    asked = [r.event.event_id for r in stored + never]
    found = writer.stored_digests(asked)
    assert found == {str(r.event.event_id): payload_digest(r.values[PAYLOAD]) for r in stored}
    assert writer.stored_digests([]) == {}


def test_ids_go_in_before_the_events(clickhouse: Client) -> None:
    # Catches: the events inserted first. A process that dies between the two inserts would
    # leave events whose ids no lookup finds, and a copy on another process would be stored
    # again; the other way round, the unacked message is redelivered and stored once.
    inserted: list[str] = []

    class Recording(EventWriter):
        def _insert(self, table: str, *args: Any, **kwargs: Any) -> None:
            inserted.append(table)
            super()._insert(table, *args, **kwargs)

    Recording(clickhouse).write(rows([received(AGENCY, "O1", d(3), due=d(9))], 5_000), [])
    assert inserted == ["event_ids", "events"]


def test_the_migration_fills_the_ids_of_events_stored_before_it(clickhouse_url: str) -> None:
    # Catches: a store upgraded from an older release whose stored events no lookup finds: every
    # copy of them would be stored a second time after the upgrade.
    client = fresh_store(clickhouse_url, up_to=28)
    old = rows([received(AGENCY, f"M{i}", d(4), due=d(9)) for i in range(50)], 1)
    columns = ("event_id", "type", "schema_version", "occurred_at", "agency_code", "source")
    client.insert(
        "events",
        [[r.values[i] for i in range(6)] + [r.values[PAYLOAD]] for r in old],
        column_names=[*columns, "payload"],
    )
    assert migrate(client, up_to=29) == [29]
    found = EventWriter(client).stored_digests([r.event.event_id for r in old])
    assert found == {str(r.event.event_id): payload_digest(r.values[PAYLOAD]) for r in old}
    assert EventWriter(client).stored_digests([UUID(int=1)]) == {}
