"""Dead letters end to end: every refusal lands in `dead_letters` with its reason and its bytes,
per integrator in the API, replayed once after a fix, and their bytes expire."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats.errors
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

import services.ingest.pipeline as ingest_pipeline
from core.ingestion.common import DEAD_LETTER_COLUMNS, DeadLetter, MessageMeta
from core.ingestion.dlq import replay_dead_letters
from core.ingestion.processor import EventRow, process
from schemas import export
from schemas.subjects import MAX_EVENT_BYTES, NATS_MAX_PAYLOAD, event_subject
from tests.helpers import VN, eventually, publish, received, resolved

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXAMPLES = sorted((Path(export.__file__).parent / "v1" / "examples").glob("*.json"))


def _dead(clickhouse: Client, agency: str) -> list[tuple[int, str, bytes]]:
    return clickhouse.query(
        "SELECT stream_seq, reason, raw FROM dead_letters FINAL WHERE agency_code = {a:String} "
        "ORDER BY stream_seq",
        parameters={"a": agency},
        column_formats={"raw": "bytes"},
    ).result_rows


def _stored(clickhouse: Client, agency: str) -> int:
    rows = clickhouse.query(
        "SELECT count() FROM events WHERE agency_code = {a:String}", parameters={"a": agency}
    ).result_rows
    return int(rows[0][0])


def _hostile_batch(agency: str, seed: int) -> list[tuple[str, bytes]]:
    """(subject, bytes): valid events, mutated examples, junk, deep and oversized payloads, all
    under one agency's subjects; seeded, so a failure is reproducible."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes]] = []
    for i in range(60):
        event = json.loads(rng.choice(EXAMPLES).read_bytes())
        event |= {"event_id": str(uuid.uuid4()), "agency_code": agency}
        subject = event_subject(agency, event["type"])
        kind = i % 6
        if kind == 1:  # one field wrong
            event[rng.choice(sorted(event))] = rng.choice([None, -1, "", "x" * 300, [], {}])
        elif kind == 2:  # a field outside the contract
            event["citizen_name"] = "Nguyễn Văn A"
        raw = json.dumps(event, ensure_ascii=False).encode()
        if kind == 3:  # damaged bytes
            cut = rng.randrange(len(raw))
            raw = raw[:cut] + bytes([rng.randrange(256)]) + raw[cut + 1 :]
        elif kind == 4:
            raw = rng.choice(
                [
                    b"[" * 30_000 + b"]" * 30_000,
                    b" " * (MAX_EVENT_BYTES + 1),
                    bytes(rng.randrange(256) for _ in range(64)),
                    b"\xff\xfe not json",
                ]
            )
        out.append((subject, raw))
    return out


async def test_every_refused_event_is_a_dead_letter_with_its_reason(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a hostile message crashing or wedging the consumer through NATS, a refusal with no
    # row, a reason that differs from the pure processor's, or bytes altered on the way to the
    # table (invalid UTF-8 used to be stored as U+FFFD).
    batch = _hostile_batch(agency, seed=6)
    expected: list[tuple[str, bytes]] = []
    valid = 0
    for subject, raw in batch:
        outcome = process(raw, MessageMeta(subject, 0, datetime.now(UTC)))
        if isinstance(outcome, DeadLetter):
            expected.append((outcome.reason, raw))
        else:
            valid += 1
        await publish(nc, raw, subject=subject)
    assert valid and len(expected) > len(batch) / 2  # the batch really mixes both

    await eventually(
        lambda: (
            len(_dead(clickhouse, agency)) == len(expected) and _stored(clickhouse, agency) == valid
        ),
        timeout=30,
    )
    assert [(reason, raw) for _, reason, raw in _dead(clickhouse, agency)] == expected


@pytest.fixture
def stricter_rule(monkeypatch: pytest.MonkeyPatch, agency: str) -> pytest.MonkeyPatch:
    """The running ingest with a rule that was wrong: it refuses this agency's receipts (as if a
    procedure code were missing from a catalogue check). Undoing the patch is the fix."""

    def strict(raw: bytes, meta: MessageMeta) -> EventRow | DeadLetter:
        result = process(raw, meta)
        if (
            isinstance(result, EventRow)
            and result.event.type == "dossier.received"
            and result.event.agency_code == agency
        ):
            return DeadLetter(
                meta=meta,
                agency_code=agency,
                reason="invalid_field",
                detail="procedure_code: not in the catalogue (test rule)",
                raw=raw,
                source=result.event.source,
                event_id=str(result.event.event_id),
            )
        return result

    monkeypatch.setattr(ingest_pipeline, "process", strict)
    return monkeypatch


def _received_count(clickhouse: Client, agency: str) -> int:
    rows = clickhouse.query(
        "SELECT count() FROM dossiers WHERE agency_code = {a:String} AND received_at IS NOT NULL",
        parameters={"a": agency},
    ).result_rows
    return int(rows[0][0]) if rows else 0


async def test_replay_after_a_fix_stores_once_and_counts(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str, stricter_rule: Any
) -> None:
    # Catches: a replay that stores twice (second run, or a republish after a crash before the
    # replay was recorded), republishes what still fails, loses the dead letter, or whose
    # republish the stream drops because it reuses the original Nats-Msg-Id.
    a = agency
    at = datetime(2026, 3, 2, 9, tzinfo=VN)
    receipt = received(a, "R1", at, due=at + timedelta(days=3))
    await publish(nc, receipt)  # refused by the wrong rule
    await publish(nc, resolved(a, "R1", at + timedelta(days=1)))  # accepted
    await publish(nc, b"{not json", subject=event_subject(a, "dossier.received"))
    await eventually(lambda: len(_dead(clickhouse, a)) == 2 and _stored(clickhouse, a) == 1)
    assert _received_count(clickhouse, a) == 0

    stricter_rule.undo()  # the fix ships

    dry = await replay_dead_letters(clickhouse, None, integrator=a, dry_run=True)
    assert (dry.candidates, dry.republished, dry.still_refused) == (2, 1, {"invalid_json": 1})
    assert dry.event_ids == [receipt["event_id"]]

    js = nc.jetstream()
    report = await replay_dead_letters(clickhouse, js, integrator=a)
    assert (report.republished, report.still_refused) == (1, {"invalid_json": 1})
    await eventually(lambda: _stored(clickhouse, a) == 2 and _received_count(clickhouse, a) == 1)

    again = await replay_dead_letters(clickhouse, js, integrator=a)
    assert (again.candidates, again.republished) == (1, 0)  # only the one that still fails

    # A crash between the republish and its record would republish once more: harmless.
    raw = json.dumps(receipt).encode()
    await js.publish(
        event_subject(a, "dossier.received"), raw, headers={"Nats-Msg-Id": str(uuid.uuid4())}
    )
    marker = resolved(a, "R2", at)
    await publish(nc, marker)  # stored after the republish was handled (one consumer, in order)
    await eventually(lambda: _stored(clickhouse, a) == 3)
    rows = clickhouse.query(
        "SELECT count() FROM events WHERE event_id = {e:UUID}",
        parameters={"e": receipt["event_id"]},
    ).result_rows
    assert rows == [(1,)]
    assert _received_count(clickhouse, a) == 1
    assert len(_dead(clickhouse, a)) == 2  # dead letters are history: replay marks, never deletes

    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        listed = (await http.get("/v1/dead-letters", params={"integrator": a})).json()
        summary = (await http.get("/v1/dead-letters/summary", params={"integrator": a})).json()
        old_name = (await http.get("/v1/dead-letters", params={"agency": a})).json()
    assert {(d["reason"], d["replayed"]) for d in listed} == {
        ("invalid_field", True),
        ("invalid_json", False),
    }
    assert old_name == listed
    bad = next(d for d in listed if d["reason"] == "invalid_json")
    assert bad["raw_preview"] == "{not json" and bad["raw_bytes"] == len(b"{not json")
    assert summary["total"] == 2
    assert summary["by_reason"] == {"invalid_field": 1, "invalid_json": 1}
    assert summary["by_integrator"] == {a: 2}
    assert sum(d["replayed"] for d in summary["days"]) == 1


async def test_dead_letters_filter_by_day(system: Any, clickhouse: Client, agency: str) -> None:
    # Catches: from/to read as UTC days, or as exclusive bounds.
    rows = [
        # dead_lettered_at (UTC) → Vietnamese day
        (datetime(2026, 1, 9, 16, 59, tzinfo=UTC), 1),  # 9 Jan 23:59 in Vietnam
        (datetime(2026, 1, 9, 17, 0, tzinfo=UTC), 2),  # 10 Jan 00:00 in Vietnam
        (datetime(2026, 1, 10, 16, 59, tzinfo=UTC), 3),  # 10 Jan 23:59 in Vietnam
    ]
    clickhouse.insert(
        "dead_letters",
        [
            (
                at,
                event_subject(agency, "dossier.received"),
                seq,
                at,
                agency,
                "",
                "invalid_json",
                "test",
                b"x",
            )
            for at, seq in rows
        ],
        column_names=[
            "dead_lettered_at",
            "subject",
            "stream_seq",
            "published_at",
            "agency_code",
            "source",
            "reason",
            "detail",
            "raw",
        ],
    )
    params = {"integrator": agency, "from": "2026-01-10", "to": "2026-01-10"}
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        listed = (await http.get("/v1/dead-letters", params=params)).json()
        summary = (await http.get("/v1/dead-letters/summary", params=params)).json()
        reversed_ = await http.get("/v1/dead-letters", params={**params, "from": "2026-01-11"})
    assert sorted(d["stream_seq"] for d in listed) == [2, 3]
    assert summary["total"] == 2 and [d["day"] for d in summary["days"]] == ["2026-01-10"]
    assert reversed_.status_code == 422


async def test_raw_bytes_expire_after_90_days_and_the_row_stays(
    clickhouse: Client, agency: str
) -> None:
    # Catches: the retention TTL missing or applied to the whole row (the counts per integrator
    # would then forget old refusals), or to recent dead letters.
    now = datetime.now(UTC)
    month = datetime(2001, 1, 1, tzinfo=UTC)  # a partition of its own, merged alone below
    clickhouse.insert(
        "dead_letters",
        [
            (now - timedelta(days=91), "s", 1, month, agency, "", "invalid_json", "d", b"old"),
            (now - timedelta(days=89), "s", 2, month, agency, "", "invalid_json", "d", b"new"),
        ],
        column_names=[
            "dead_lettered_at",
            "subject",
            "stream_seq",
            "published_at",
            "agency_code",
            "source",
            "reason",
            "detail",
            "raw",
        ],
    )
    clickhouse.command("OPTIMIZE TABLE dead_letters PARTITION 200101 FINAL")
    rows = clickhouse.query(
        "SELECT stream_seq, raw FROM dead_letters FINAL WHERE agency_code = {a:String} "
        "ORDER BY stream_seq",
        parameters={"a": agency},
        column_formats={"raw": "bytes"},
    ).result_rows
    assert rows == [(1, b""), (2, b"new")]


async def test_replay_over_the_api_while_motcua_up_runs_admin_only(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str, stricter_rule: Any
) -> None:
    # Catches: a replay route open to a non-admin key, one that does not reach the running
    # ingest (the CLI cannot while `motcua up` holds the store), or one that replays twice.
    a = agency
    at = datetime(2026, 3, 9, 9, tzinfo=VN)
    receipt = received(a, "API1", at, due=at + timedelta(days=3))
    await publish(nc, receipt)
    await eventually(lambda: len(_dead(clickhouse, a)) == 1)
    stricter_rule.undo()  # the fix ships

    body = {"integrator": a, "since": "2026-01-01"}
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        created = await http.post("/v1/keys", json={"name": "Kiểm toán", "role": "auditor"})
        auditor = {"Authorization": f"Bearer {created.json()['key']}"}
        refused = await http.post("/v1/dead-letters:replay", json=body, headers=auditor)
        anonymous = await http.post(
            "/v1/dead-letters:replay", json=body, headers={"Authorization": ""}
        )
        bad = await http.post("/v1/dead-letters:replay", json={**body, "reason": "no_such"})
        dry = await http.post("/v1/dead-letters:replay", json={**body, "dry_run": True})
        done = await http.post("/v1/dead-letters:replay", json=body)
        # The rollup commits a little after the raw row (materialized views follow the insert).
        await eventually(lambda: _stored(clickhouse, a) == 1 == _received_count(clickhouse, a))
        again = await http.post("/v1/dead-letters:replay", json=body)
    assert (refused.status_code, anonymous.status_code, bad.status_code) == (403, 401, 422)
    assert dry.status_code == done.status_code == again.status_code == 200, done.text
    assert dry.json() | {"dry_run": False} == done.json()
    assert done.json() == {
        "dry_run": False,
        "candidates": 1,
        "republished": 1,
        "already_stored": 0,
        "expired": 0,
        "still_refused": {},
        "event_ids": [receipt["event_id"]],
    }
    assert (again.json()["candidates"], again.json()["republished"]) == (0, 0)
    assert _received_count(clickhouse, a) == 1


async def test_big_letters_are_listed_by_preview_and_downloaded_whole(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches (issue 14, finding 5): a listing that carries every letter's bytes twice (1,000
    # letters of 1 MB made one response of 353 MB and the API's memory grow by 1.5 GB), and a
    # NATS server that takes messages of any size up to its 1 MiB default.
    subject = event_subject(agency, "dossier.received")
    assert nc.max_payload == NATS_MAX_PAYLOAD  # what the server announces, from its config
    with pytest.raises(nats.errors.MaxPayloadError):
        await nc.jetstream().publish(subject, b" " * (NATS_MAX_PAYLOAD + 1))
    letters = [bytes([65 + i]) * 500 + b"\xff" + b" " * (70_000 - 501) for i in range(3)]
    for raw in letters:
        await nc.jetstream().publish(subject, raw)
    await eventually(lambda: len(_dead(clickhouse, agency)) == len(letters))
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        listing = await http.get("/v1/dead-letters", params={"integrator": agency, "limit": 1000})
        listed = listing.json()
        # a few KB whatever the letters' size: the preview, the size, where the bytes are
        assert len(listing.content) < len(letters) * 4_000
        assert {d["reason"] for d in listed} == {"oversized"}
        downloads = []
        for d in listed:
            assert d["raw_bytes"] == 70_000 and not d["raw_expired"]
            assert d["raw_preview"].startswith(d["raw_preview"][0] * 500 + "\ufffd")
            got = await http.get(d["raw_url"])
            assert got.status_code == 200
            assert got.headers["content-type"] == "application/octet-stream"
            downloads.append(got.content)
        missing = await http.get(
            listed[0]["raw_url"].replace(f"/{listed[0]['stream_seq']}/", "/999999999/")
        )
    assert sorted(downloads) == sorted(letters)  # verbatim, invalid UTF-8 included
    assert missing.status_code == 404


async def test_the_quota_starts_from_what_the_store_keeps_today(
    clickhouse: Client, agency: str
) -> None:
    # Catches: a restart forgetting what was kept today (each restart would allow a new quota).
    from core.ingestion.writer import EventWriter

    at = datetime.now(UTC)
    letters = [
        DeadLetter(MessageMeta(event_subject(agency, "x"), i, at), agency, "invalid_json", "t",
                   b"y" * 10)
        for i in range(3)
    ]  # fmt: skip
    clickhouse.insert(
        "dead_letters", [d.values() for d in letters], column_names=DEAD_LETTER_COLUMNS
    )
    used = EventWriter(clickhouse).dead_letter_bytes_since(at - timedelta(minutes=1))
    assert used[agency] == 30
    assert agency not in EventWriter(clickhouse).dead_letter_bytes_since(at + timedelta(days=1))
