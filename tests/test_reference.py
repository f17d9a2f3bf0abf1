"""Reference data as events: contract, ingest, the org tree and catalogue in use, file loading."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.ingestion.common import DeadLetter, MessageMeta, StoreUnavailable
from core.ingestion.reference import (
    AGENCY_COLUMNS,
    PROCEDURE_COLUMNS,
    ReferenceRow,
    process_reference,
)
from core.ingestion.reference_loader import (
    CatalogFileError,
    events_from_data,
    read_catalog_file,
    seed_if_empty,
)
from core.ingestion.subscriber import REFERENCE_DURABLE, store_batch
from core.messaging.nats_server import EmbeddedNats, free_port
from core.messaging.streams import ensure_streams
from core.reference.catalog import Catalog
from core.reference.org_tree import OrgTree
from core.reference.seed import SEED_FILE
from schemas import export
from schemas.asyncapi import DEAD_LETTER_REASONS
from schemas.subjects import (
    DLQ_STREAM,
    REFERENCE_DEAD_LETTER_AGENCY,
    REFERENCE_STREAM,
    dead_letter_subject,
    reference_subject,
)
from schemas.v1.reference import REFERENCE_TYPES, parse_reference
from tests.helpers import eventually
from tools.simulator.catalog import AGENCIES, PROCEDURES

V1 = Path(export.__file__).parent / "v1"
EXAMPLES = sorted((V1 / "examples" / "reference").glob("*.json"))
SCHEMAS = V1 / "jsonschema" / export.REFERENCE_DIR
PUBLISHED_AT = datetime(2025, 6, 20, 2, 0, tzinfo=UTC)
BEFORE, AFTER = date(2024, 6, 1), date(2026, 1, 1)  # either side of the 1/7/2025 restructuring


def agency_record(
    code: str, parent: str | None, level: str, start: str, end: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "type": "reference.agency",
        "occurred_at": "2025-06-16T09:00:00+07:00",
        "source": "test-suite",
        "agency_code": code,
        "name": f"UBND {code}",
        "level": level,
        "parent_code": parent,
        "valid_from": start,
        "valid_to": end,
        **extra,
    }


def procedure_record(code: str, **extra: Any) -> dict[str, Any]:
    example = json.loads((V1 / "examples" / "reference" / "reference.procedure.json").read_text())
    return {**example, "event_id": str(uuid.uuid4()), "procedure_code": code, **extra}


def subject_of(record: dict[str, Any]) -> str:
    if record["type"] == "reference.agency":
        return reference_subject("agency", record["agency_code"])
    return reference_subject("procedure", record["procedure_code"])


def meta(subject: str) -> MessageMeta:
    return MessageMeta(subject=subject, stream_seq=7, published_at=PUBLISHED_AT)


async def publish_record(
    nc: NatsClient, record: dict[str, Any] | bytes, subject: str | None = None, msg_id: bool = True
) -> None:
    """As an integrator with plain nats-py would."""
    if isinstance(record, dict):
        data = json.dumps(record).encode()
        subject = subject or subject_of(record)
        headers = {"Nats-Msg-Id": record["event_id"]} if msg_id else None
    else:
        data, headers = record, None
    assert subject is not None
    return await nc.jetstream().publish(subject, data, headers=headers)


def query(client: Client, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return list(client.query(sql, parameters=params).result_rows)


# The contract ---------------------------------------------------------------------------------


@pytest.mark.pure
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_reference_example_is_valid_stored_and_matches_the_json_schema(path: Path) -> None:
    # Catches an example drifting from the models, one the ingest would refuse, or an exported
    # JSON Schema that refuses what the models accept.
    jsonschema = pytest.importorskip("jsonschema")
    raw = path.read_bytes()
    record = parse_reference(raw)
    assert path.name == f"{record.type}.json"
    result = process_reference(raw, meta(subject_of(json.loads(raw))))
    assert isinstance(result, ReferenceRow), getattr(result, "detail", "")
    schema = json.loads((SCHEMAS / f"{record.type}.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(raw), schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.pure
def test_every_reference_type_has_an_example_and_a_fresh_json_schema() -> None:
    # Catches a reference model edited without `python -m schemas.export`, or a type added
    # without an example payload.
    assert {p.stem for p in EXAMPLES} == set(REFERENCE_TYPES)
    assert export.stale_files(SCHEMAS, export.render_reference_schemas()) == []


def _mutated(change: dict[str, Any], base: str = "reference.agency") -> bytes:
    record = json.loads((V1 / "examples" / "reference" / f"{base}.json").read_text())
    return json.dumps({**record, **change}).encode()


AGENCY_SUBJECT = reference_subject("agency", "PHUONG_BACNHATRANG")


@pytest.mark.pure
@pytest.mark.parametrize(
    ("subject", "raw", "reason"),
    [
        (AGENCY_SUBJECT, b"{broken", "invalid_json"),
        (AGENCY_SUBJECT, b"[1, 2]", "not_an_object"),
        (AGENCY_SUBJECT, _mutated({"type": "reference.unit"}), "unknown_type"),
        (AGENCY_SUBJECT, _mutated({"occurred_at": "2025-06-16T09:00:00"}), "invalid_field"),
        (AGENCY_SUBJECT, _mutated({"valid_to": "2025-07-01"}), "invalid_field"),
        (AGENCY_SUBJECT, _mutated({"parent_code": None}), "invalid_field"),
        (AGENCY_SUBJECT, _mutated({"citizen_name": "x"}), "invalid_field"),
        # issue 14, finding 8: a repeated key; a number for a string
        (AGENCY_SUBJECT, _mutated({})[:-1] + b', "parent_code": null}', "invalid_json"),
        (AGENCY_SUBJECT, _mutated({"name": 5}), "invalid_field"),
        ("motcua.reference.unit.X", _mutated({}), "bad_subject"),
        ("motcua.events.X.dossier.received", _mutated({}), "bad_subject"),
        (reference_subject("agency", "XA_KHAC"), _mutated({}), "code_mismatch"),
        (reference_subject("procedure", "PHUONG_BACNHATRANG"), _mutated({}), "type_mismatch"),
        (
            reference_subject("procedure", "1.004228"),
            _mutated({}, base="reference.procedure"),
            "code_mismatch",
        ),
    ],
)
def test_invalid_reference_is_dead_lettered_with_a_documented_reason(
    subject: str, raw: bytes, reason: str
) -> None:
    # Catches the ingest accepting a record the contract forbids (a commune without parent, a
    # period that ends before it starts, a record on another code's subject), or refusing it
    # under a reason the AsyncAPI document does not list.
    result = process_reference(raw, meta(subject))
    assert isinstance(result, DeadLetter)
    assert (result.reason, result.raw) == (reason, raw), result.detail
    assert result.agency_code == REFERENCE_DEAD_LETTER_AGENCY
    assert reason in DEAD_LETTER_REASONS


@pytest.mark.pure
def test_procedure_subject_uses_underscores_and_processing_is_deterministic() -> None:
    # Catches a dotted procedure code used as subject tokens (1.004227 would be 2 tokens), or a
    # processor whose rows depend on anything but its input.
    raw = (V1 / "examples" / "reference" / "reference.procedure.json").read_bytes()
    subject = reference_subject("procedure", "1.004227")
    assert subject == "motcua.reference.procedure.1_004227"
    first, second = process_reference(raw, meta(subject)), process_reference(raw, meta(subject))
    assert isinstance(first, ReferenceRow) and isinstance(second, ReferenceRow)
    assert first.values == second.values
    assert first.table == "procedures" and first.key == ("1.004227", date(2024, 8, 1))


def test_insert_columns_are_the_table_columns(clickhouse: Client) -> None:
    # Catches the migration and the processor's column tuples drifting apart.
    for table, columns in (("agencies", AGENCY_COLUMNS), ("procedures", PROCEDURE_COLUMNS)):
        described = {row[0] for row in query(clickhouse, f"DESCRIBE TABLE {table}")}
        assert described == {*columns, "ingested_at"}, table


# Loading from a file --------------------------------------------------------------------------


@pytest.mark.pure
def test_seed_file_covers_the_simulator_and_loads_the_same_events_twice() -> None:
    # Catches a seed whose codes differ from the simulator's (simulated events would not roll
    # up), or event ids that change between loads (a reload would count twice).
    first, second = read_catalog_file(SEED_FILE), read_catalog_file(SEED_FILE)
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert len({e.event_id for e in first}) == len(first)
    agency_codes = {e.agency_code for e in first if e.type == "reference.agency"}
    assert {a.code for a in AGENCIES} | {"KHANHHOA"} <= agency_codes
    procedure_codes = {e.procedure_code for e in first if e.type == "reference.procedure"}
    assert {p.code for p in PROCEDURES} <= procedure_codes
    assert all(e.source == "catalog-file:khanhhoa.json" for e in first)


@pytest.mark.pure
def test_catalog_file_records_must_not_carry_the_envelope() -> None:
    # Catches a file whose records set their own event_id (reloads would no longer be
    # idempotent) or an unknown section being silently ignored.
    record = agency_record("X", None, "province", "2022-01-01")
    with pytest.raises(CatalogFileError, match="filled by the loader"):
        events_from_data({"agencies": [record]}, "t")
    with pytest.raises(CatalogFileError, match="expected"):
        events_from_data({"agency": []}, "t")


# Ingest through NATS --------------------------------------------------------------------------

on_session_loop = pytest.mark.asyncio(loop_scope="session")


@on_session_loop
async def test_reference_events_from_plain_nats_land_in_the_tables(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches reference events not consumed by `motcua up` (subscriber not wired, stream not
    # declared), or stored without their provenance.
    a = agency_record(agency, None, "province", "2022-01-01")
    p = procedure_record(f"9.{agency[1:]}")
    await publish_record(nc, a)
    await publish_record(nc, p)
    await eventually(
        lambda: (
            query(
                clickhouse,
                "SELECT name, subject, stream_seq > 0 FROM agencies_current "
                "WHERE agency_code = {c:String}",
                c=agency,
            )
            == [(f"UBND {agency}", subject_of(a), True)]
        )
    )
    await eventually(
        lambda: (
            query(
                clickhouse,
                "SELECT online_level, levels FROM procedures_current "
                "WHERE procedure_code = {c:String}",
                c=p["procedure_code"],
            )
            == [("partial", ["province"])]
        )
    )


@on_session_loop
async def test_invalid_reference_event_is_dead_lettered_and_does_not_block(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches an invalid record blocking the records behind it, being dropped without trace,
    # or missing from the dead_letters table or the DLQ stream.
    broken_subject = reference_subject("agency", agency)
    mismatch = agency_record(f"{agency}_X", None, "province", "2022-01-01")
    mismatch_subject = reference_subject("agency", f"{agency}_Y")
    await publish_record(nc, b"{broken", subject=broken_subject)
    await publish_record(nc, mismatch, subject=mismatch_subject)
    await publish_record(nc, agency_record(agency, None, "province", "2022-01-01"))
    await eventually(
        lambda: (
            query(
                clickhouse, "SELECT count() FROM agencies WHERE agency_code = {c:String}", c=agency
            )
            == [(1,)]
        )
    )
    await eventually(
        lambda: (
            sorted(
                query(
                    clickhouse,
                    "SELECT subject, reason FROM dead_letters "
                    "WHERE agency_code = {a:String} AND subject IN {s:Array(String)}",
                    a=REFERENCE_DEAD_LETTER_AGENCY,
                    s=[broken_subject, mismatch_subject],
                )
            )
            == sorted([(broken_subject, "invalid_json"), (mismatch_subject, "code_mismatch")])
        )
    )
    last = await nc.jetstream().get_last_msg(
        DLQ_STREAM, dead_letter_subject(REFERENCE_DEAD_LETTER_AGENCY)
    )
    assert last.headers is not None
    assert last.headers["Motcua-Subject"] in {broken_subject, mismatch_subject}


@on_session_loop
async def test_republished_record_counts_once_and_a_new_version_replaces_it(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches a republish (past the stream's duplicate window: no Nats-Msg-Id) stored twice,
    # or a corrected record for the same (code, valid_from) not replacing the earlier one.
    record = agency_record(agency, None, "province", "2022-01-01")
    first = await publish_record(nc, record, msg_id=False)
    again = await publish_record(nc, record, msg_id=False)
    await eventually(lambda: reference_drained(nc))
    # Before any correction, the only row of this event is the first publish's. Checked by
    # stream sequence, not by count: a background merge of two stored copies would keep the
    # second one's row, which this still sees.
    rows = "SELECT stream_seq FROM agencies WHERE event_id = {e:UUID}"
    assert query(clickhouse, rows, e=record["event_id"]) == [(first.seq,)]
    assert again.seq > first.seq
    current = "SELECT name FROM agencies_current WHERE agency_code = {c:String}"
    assert query(clickhouse, current, c=agency) == [(f"UBND {agency}",)]
    corrected = {**record, "event_id": str(uuid.uuid4()), "name": "UBND tỉnh (đã sửa)"}
    await publish_record(nc, corrected)
    await eventually(lambda: query(clickhouse, current, c=agency) == [("UBND tỉnh (đã sửa)",)])


async def reference_drained(nc: NatsClient) -> bool:
    """Every reference record delivered and acknowledged: since acks follow inserts, all of it
    is stored or dead-lettered."""
    info = await nc.jetstream().consumer_info(REFERENCE_STREAM, REFERENCE_DURABLE)
    return info.num_pending == 0 and info.num_ack_pending == 0


@on_session_loop
async def test_store_outage_nacks_the_batch_instead_of_acking_or_dead_lettering() -> None:
    # Catches reference records acked (lost) or dead-lettered while ClickHouse is down.
    class Msg:
        def __init__(self, data: bytes) -> None:
            self.data, self.subject, self.calls = data, AGENCY_SUBJECT, []
            self.metadata = type(
                "M", (), {"sequence": type("S", (), {"stream": 1}), "timestamp": PUBLISHED_AT}
            )

        async def ack(self) -> None:
            self.calls.append("ack")

        async def nak(self, delay: float | None = None) -> None:
            self.calls.append("nak")

    class DownWriter:
        def write(self, rows: Any, dead: Any) -> Any:
            raise StoreUnavailable("connection refused (simulated outage)")

    dead_letters: list[Any] = []

    async def publish_dead(dead: Any) -> None:
        dead_letters.extend(dead)

    msgs = [Msg((V1 / "examples" / "reference" / "reference.agency.json").read_bytes())]
    msgs.append(Msg(b"{broken"))
    await store_batch(msgs, DownWriter(), publish_dead)  # type: ignore[arg-type]
    assert [m.calls for m in msgs] == [["nak"], ["nak"]]
    assert dead_letters == []


# The org tree and the catalogue in use --------------------------------------------------------


def _tree_records(root: str) -> list[dict[str, Any]]:
    """A province with a department, two districts and three communes until 1/7/2025; then
    the communes merged under the province: C1 + C2 → M1, C3 kept its code (a new version)."""
    cut = "2025-07-01"
    return [
        agency_record(root, None, "province", "2022-01-01"),
        agency_record(f"{root}_S1", root, "province", "2022-01-01"),
        agency_record(f"{root}_D1", root, "district", "2022-01-01", cut),
        agency_record(f"{root}_D2", root, "district", "2022-01-01", cut),
        agency_record(f"{root}_C1", f"{root}_D1", "commune", "2022-01-01", cut),
        agency_record(f"{root}_C2", f"{root}_D1", "commune", "2022-01-01", cut),
        agency_record(f"{root}_C3", f"{root}_D2", "commune", "2022-01-01", cut),
        agency_record(f"{root}_M1", root, "commune", cut),
        agency_record(f"{root}_C3", root, "commune", cut),
    ]


@on_session_loop
async def test_org_tree_before_and_after_the_restructuring(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches the tree ignoring validity dates (abolished districts still rolling up communes in
    # 2026, or merged communes missing), a reused code keeping its old parent, or descendants()
    # leaving out part of the province.
    r = agency
    records = _tree_records(r)
    for record in records:
        await publish_record(nc, record)
    ours = "SELECT count() FROM agencies_current WHERE startsWith(agency_code, {r:String})"
    await eventually(lambda: query(clickhouse, ours, r=r) == [(len(records),)])

    before = await asyncio.to_thread(OrgTree.load, clickhouse, BEFORE)
    assert before.children(r) == [f"{r}_D1", f"{r}_D2", f"{r}_S1"]
    assert before.children(f"{r}_D1") == [f"{r}_C1", f"{r}_C2"]
    assert before.level(f"{r}_D1") == "district" and before.name(r) == f"UBND {r}"
    assert before.path(f"{r}_C3") == [r, f"{r}_D2", f"{r}_C3"]
    assert before.descendants(r) == {r, *(f"{r}_{s}" for s in ("S1", "D1", "D2", "C1", "C2", "C3"))}
    assert f"{r}_M1" not in before

    after = await asyncio.to_thread(OrgTree.load, clickhouse, AFTER)
    assert after.children(r) == [f"{r}_C3", f"{r}_M1", f"{r}_S1"]
    assert after.parent(f"{r}_C3") == r and after.path(f"{r}_M1") == [r, f"{r}_M1"]
    assert after.descendants(r) == {r, f"{r}_S1", f"{r}_M1", f"{r}_C3"}
    assert all(after.level(c) != "district" for c in after.descendants(r))
    assert f"{r}_D1" not in after and f"{r}_C1" not in after

    again = await asyncio.to_thread(OrgTree.load, clickhouse, BEFORE)
    assert again.version == before.version != after.version


@on_session_loop
async def test_catalog_at_a_date_with_lookups_by_any_code_form(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches the catalogue ignoring versions (the 2024 facts used for 2026), or a lookup by the
    # dashed code dossier events carry (1-004227) missing the national code (1.004227).
    code = f"9.{agency[1:]}"
    old = procedure_record(
        code, valid_from="2022-01-01", valid_to="2025-07-01", levels=["district"]
    )
    new = procedure_record(code, valid_from="2025-07-01", levels=["commune"], online_level="full")
    for record in (old, new):
        await publish_record(nc, record)
    stored = "SELECT count() FROM procedures_current WHERE procedure_code = {c:String}"
    await eventually(lambda: query(clickhouse, stored, c=code) == [(2,)])
    before = await asyncio.to_thread(Catalog.load, clickhouse, BEFORE)
    after = await asyncio.to_thread(Catalog.load, clickhouse, AFTER)
    assert before[code].levels == ("district",) and before[code].online_level == "partial"
    assert after[code.replace(".", "-")].levels == ("commune",)
    assert after[code].online and after[code].decision_date == date(2024, 7, 1)
    assert before.version != after.version


@on_session_loop
async def test_motcua_up_seeds_khanh_hoa_once(
    system: Any, nc: NatsClient, clickhouse: Client
) -> None:
    # Catches the seed not published on first start, its tree not rolling the simulator's
    # agencies up to the province, or a second start publishing it again.
    seed = read_catalog_file(SEED_FILE)

    def valid_at(at: date) -> set[str]:
        return {
            e.agency_code
            for e in seed
            if e.type == "reference.agency" and e.valid_from <= at < (e.valid_to or date.max)
        }

    await eventually(
        lambda: (
            query(
                clickhouse,
                "SELECT count() FROM agencies_current WHERE source = {s:String}",
                s="catalog-file:khanhhoa.json",
            )
            == [(len([e for e in seed if e.type == "reference.agency"]),)]
        )
    )
    before = await asyncio.to_thread(OrgTree.load, clickhouse, BEFORE)
    after = await asyncio.to_thread(OrgTree.load, clickhouse, AFTER)
    assert before.descendants("KHANHHOA") == valid_at(BEFORE)
    assert after.descendants("KHANHHOA") == valid_at(AFTER)
    assert "XA_VINHLUONG" in before.descendants("NHATRANG")
    assert "NHATRANG" not in after and after.parent("PHUONG_BACNHATRANG") == "KHANHHOA"
    assert await seed_if_empty(clickhouse, nc.jetstream()) is None


# motcua catalog load --------------------------------------------------------------------------


def _motcua(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "motcua.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


@on_session_loop
async def test_catalog_load_direct_loads_the_seed_into_its_own_store_idempotently(
    tmp_path: Path,
) -> None:
    # Catches `motcua catalog load --direct` failing on a fresh store, miscounting, or storing
    # the records again on a reload.
    env = {"MOTCUA_DATA_DIR": str(tmp_path / "data")}
    seed = read_catalog_file(SEED_FILE)
    agencies = len([e for e in seed if e.type == "reference.agency"])
    procedures = len(seed) - agencies
    first = await asyncio.to_thread(_motcua, "catalog", "load", str(SEED_FILE), "--direct", env=env)
    assert first.returncode == 0, first.stderr
    assert f"agencies: {agencies} stored, 0 already stored" in first.stdout
    assert f"procedures: {procedures} stored, 0 already stored" in first.stdout
    again = await asyncio.to_thread(_motcua, "catalog", "load", str(SEED_FILE), "--direct", env=env)
    assert again.returncode == 0, again.stderr
    assert f"agencies: 0 stored, {agencies} already stored" in again.stdout
    assert f"procedures: 0 stored, {procedures} already stored" in again.stdout


@on_session_loop
async def test_catalog_load_publishes_through_nats_to_the_running_system(
    system: Any, clickhouse: Client, agency: str, tmp_path: Path
) -> None:
    # Catches the default (publish) path of `motcua catalog load` not reaching the ingest, or a
    # reload publishing new events instead of the same ones.
    data = {
        "agencies": [
            {
                "agency_code": agency,
                "name": "UBND tỉnh thử",
                "level": "province",
                "parent_code": None,
                "valid_from": "2022-01-01",
                "valid_to": None,
            }
        ]
    }
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    env = {"MOTCUA_NATS_URL": system.nats_url}
    first = await asyncio.to_thread(_motcua, "catalog", "load", str(path), env=env)
    assert first.returncode == 0, first.stderr
    assert "agencies: 1 published, 0 already in the stream" in first.stdout
    again = await asyncio.to_thread(_motcua, "catalog", "load", str(path), env=env)
    assert "agencies: 0 published, 1 already in the stream" in again.stdout
    await eventually(
        lambda: (
            query(
                clickhouse,
                "SELECT name, source FROM agencies_current WHERE agency_code = {c:String}",
                c=agency,
            )
            == [("UBND tỉnh thử", "catalog-file:catalog.json")]
        )
    )


@on_session_loop
async def test_replay_from_the_stream_brings_reference_data_back_to_a_fresh_store(
    tmp_path: Path,
) -> None:
    # Catches a fresh store left without org tree and catalogue because the live durable
    # consumer had already acked them, or a replay where an older version wins over a newer one.
    server = EmbeddedNats(tmp_path / "nats", port=free_port())
    await server.start()
    try:
        client = await nats.connect(server.url)
        await ensure_streams(client.jetstream())
        first = agency_record("RS_ROOT", None, "province", "2022-01-01")
        newer = {**first, "event_id": str(uuid.uuid4()), "name": "UBND tỉnh (mới)"}
        for record in (first, newer, procedure_record("9.000001")):
            await publish_record(client, record)
        await publish_record(client, b"{broken", subject=reference_subject("agency", "RS_ROOT"))
        await client.drain()
        env = {"MOTCUA_DATA_DIR": str(tmp_path / "data"), "MOTCUA_NATS_URL": server.url}
        done = await asyncio.to_thread(_motcua, "replay", "--from-stream", env=env)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert (
        "reference data from the stream: 2 records stored, 1 already stored, 1 dead-lettered"
        in done.stdout
    )
    shown = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            "from core.storage.clickhouse import connect; import sys; "
            "c = connect(sys.argv[1]); "
            "print(c.query('SELECT name FROM agencies_current').result_rows)",
            f"chdb://{tmp_path / 'data' / 'clickhouse'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "[('UBND tỉnh (mới)',)]" in shown.stdout, shown.stderr
