"""The pure processor and the storage contract it writes to."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client

from core.ingestion.common import DEAD_LETTER_COLUMNS, DeadLetter, MessageMeta
from core.ingestion.processor import EVENT_COLUMNS, EventRow, process
from tests.helpers import VN, received

META = MessageMeta("motcua.events.STNMT.dossier.received", 42, datetime(2026, 3, 2, tzinfo=UTC))


def payload() -> bytes:
    at = datetime(2026, 3, 2, 9, tzinfo=VN)
    return json.dumps(received("STNMT", "000.00.20.H34-260302-0001", at, due=at)).encode()


@pytest.mark.pure
def test_same_message_same_row() -> None:
    # Catches: a processor that reads the clock or other hidden state (rows would differ on
    # redelivery and break idempotency).
    raw = payload()
    first, second = process(raw, META), process(raw, META)
    assert isinstance(first, EventRow) and isinstance(second, EventRow)
    assert first.values == second.values
    assert len(first.values) == len(EVENT_COLUMNS)


@pytest.mark.pure
def test_times_are_stored_in_utc() -> None:
    # Catches: an offset silently dropped (a +07:00 time stored as if it were UTC is 7 h off).
    row = process(payload(), META)
    assert isinstance(row, EventRow)
    occurred = row.values[EVENT_COLUMNS.index("occurred_at")]
    assert occurred == datetime(2026, 3, 2, 2, tzinfo=UTC)


@pytest.mark.pure
@pytest.mark.parametrize(
    ("mutate", "subject", "reason"),
    [
        (lambda e: e | {"occurred_at": "2026-03-02T09:00:00"}, None, "invalid_field"),
        (lambda e: e | {"citizen_name": "Nguyễn Văn A"}, None, "invalid_field"),
        (lambda e: e | {"channel": "fax"}, None, "invalid_field"),
        (lambda e: e | {"type": "dossier.teleported"}, None, "unknown_type"),
        (lambda e: e, "motcua.events.SXD.dossier.received", "agency_mismatch"),
        (lambda e: e, "motcua.events.STNMT.dossier.resolved", "type_mismatch"),
        (lambda e: e, "somewhere.else", "bad_subject"),
    ],
)
def test_refusals_name_their_reason(mutate, subject, reason) -> None:  # type: ignore[no-untyped-def]
    # Catches: an invalid event stored, or refused with a reason an integrator cannot act on;
    # a field outside the contract (personal data) must never be stored.
    event = mutate(json.loads(payload()))
    meta = MessageMeta(subject or META.subject, 7, META.published_at)
    result = process(json.dumps(event).encode(), meta)
    assert isinstance(result, DeadLetter)
    assert result.reason == reason
    assert result.detail
    assert len(result.values()) == len(DEAD_LETTER_COLUMNS)


@pytest.mark.pure
def test_bad_bytes_are_kept_verbatim() -> None:
    # Catches: a dead letter that loses what the integrator actually sent.
    result = process(b"\xff\xfe not json", META)
    assert isinstance(result, DeadLetter)
    assert result.reason == "invalid_json"
    assert result.raw == b"\xff\xfe not json"


def test_insert_columns_match_the_tables(clickhouse: Client) -> None:
    # Catches: drift between the processor's rows and the DDL (a renamed column would fail at
    # runtime, or a new one silently stay empty).
    def columns(table: str) -> list[str]:
        rows = clickhouse.query(
            "SELECT name, default_kind FROM system.columns WHERE database = currentDatabase() "
            "AND table = {t:String} ORDER BY position",
            parameters={"t": table},
        ).result_rows
        return [name for name, default in rows if default == ""]

    assert columns("events") == list(EVENT_COLUMNS)
    assert columns("dead_letters") == list(DEAD_LETTER_COLUMNS)
