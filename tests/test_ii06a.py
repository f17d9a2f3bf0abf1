"""Biểu II.06a: hand-computed figures, and its identities on random event streams."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient
from openpyxl import load_workbook

from core.figures import report_ii06a
from core.figures.periods import Period
from core.ingestion.common import MessageMeta
from core.ingestion.processor import EventRow, process
from core.ingestion.writer import EventWriter
from tests.helpers import VN, dossier_event, eventually, publish, received, resolved
from tests.test_pipeline import d, stored


async def test_hand_computed_march(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: carried-over dossiers missed, open dossiers judged at the wrong instant, a
    # column or identity wrong, and exports whose headings or numbers differ from the JSON.
    a = agency
    events = [
        received(a, "C1", d(20, month=2), due=d(3, 17)),
        resolved(a, "C1", d(2)),  # col 6, 8
        received(a, "C2", d(25, month=2), due=d(1, 17)),  # col 6, 13
        received(a, "C3", d(5), due=d(10, 17)),
        resolved(a, "C3", d(10)),  # col 4, 9
        received(a, "C4", d(6), due=d(9, 17), channel="direct"),
        resolved(a, "C4", d(12)),  # col 5, 10
        received(a, "C5", d(20), due=d(15, 17, month=4), channel="postal"),  # col 5, 12
        received(a, "C6", d(10, month=2), due=d(20, 17, month=2)),
        resolved(a, "C6", d(20, month=2)),  # not in March
        received(a, "C7", d(2, month=4), due=d(9, 17, month=4)),  # not in March
    ]
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))
    params = {"from": "2026-03-01", "to": "2026-03-31", "agency": a}
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        body = (await http.get("/v1/reports/ii06a", params=params)).json()
        csv_body = await http.get("/v1/reports/ii06a", params={**params, "format": "csv"})
        xlsx_body = await http.get("/v1/reports/ii06a", params={**params, "format": "xlsx"})
    # col4 = 1 (C3); col5 = 2 (C4, C5); col6 = 2 (C1, C2) → col3 = 5
    # col8 = 1 (C1), col9 = 1 (C3), col10 = 1 (C4) → col7 = 3; col12 = 1 (C5), col13 = 1 (C2)
    # → col11 = 2; and 3 = 7 + 11: 5 = 3 + 2
    expected = {
        "agency_code": a,
        "received_total": 5,
        "received_online": 1,
        "received_direct_postal": 2,
        "carried_over": 2,
        "resolved_total": 3,
        "resolved_early": 1,
        "resolved_on_time": 1,
        "resolved_late": 1,
        "pending_total": 2,
        "pending_within": 1,
        "pending_overdue": 1,
    }
    assert [{k: r[k] for k in expected} for r in body["rows"]] == [expected]
    assert body["rows"][0]["own"] == expected
    assert body["total"]["received_total"] == 5
    table = list(csv.reader(io.StringIO(csv_body.content.decode("utf-8-sig"))))
    assert table[0][2] == "(3) Số hồ sơ tiếp nhận - Tổng số"
    assert table[1] == [a, a, "5", "1", "2", "2", "3", "1", "1", "1", "2", "1", "1"]
    sheet = load_workbook(io.BytesIO(xlsx_body.content)).active
    assert sheet is not None
    assert [c.value for c in sheet[4]] == [a, a, 5, 1, 2, 2, 3, 1, 1, 1, 2, 1, 1]


def check_identities(row: report_ii06a.II06aRow) -> None:
    r = row.as_dict()
    assert (
        r["received_total"]
        == r["received_online"] + r["received_direct_postal"] + r["carried_over"]
    )
    assert r["resolved_total"] == r["resolved_early"] + r["resolved_on_time"] + r["resolved_late"]
    assert r["pending_total"] == r["pending_within"] + r["pending_overdue"]
    assert r["received_total"] == r["resolved_total"] + r["pending_total"]


dossier_plan = st.fixed_dictionaries(
    {
        "received_day": st.integers(0, 120),
        "due_days": st.integers(0, 30),
        "channel": st.sampled_from(["online", "direct", "postal"]),
        "end_days": st.one_of(st.none(), st.integers(0, 60)),
        "end_kind": st.sampled_from(["resolved", "returned", "withdrawn"]),
        "supplements": st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=2),
        "agency": st.sampled_from(["P1", "P2", "P3"]),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plans=st.lists(dossier_plan, min_size=1, max_size=25),
    period_start=st.integers(0, 120),
    period_days=st.integers(1, 90),
    now_day=st.integers(0, 200),
)
def test_identities_hold_on_random_streams(
    clickhouse: Client,
    plans: list[dict[str, Any]],
    period_start: int,
    period_days: int,
    now_day: int,
) -> None:
    # Catches: any dossier counted in no column or in two (received/carried, resolved/pending),
    # for any period, judging instant, supplement pattern or arrival order.
    run = uuid.uuid4().hex[:8].upper()
    base = datetime(2026, 1, 1, 8, tzinfo=VN)
    rows: list[EventRow] = []
    for i, p in enumerate(plans):
        a, did = f"{p['agency']}{run}", f"Q{i}"
        at = base + timedelta(days=p["received_day"], hours=i % 9)
        evs = [received(a, did, at, due=at + timedelta(days=p["due_days"]), channel=p["channel"])]
        for req, wait in p["supplements"]:
            asked = at + timedelta(days=req, hours=1)
            evs.append(dossier_event("supplement_requested", a, did, asked))
            evs.append(dossier_event("supplement_received", a, did, asked + timedelta(days=wait)))
        if p["end_days"] is not None:
            end = at + timedelta(days=p["end_days"], hours=2)
            evs.append(
                resolved(a, did, end)
                if p["end_kind"] == "resolved"
                else dossier_event(p["end_kind"], a, did, end)
            )
        for n, e in enumerate(reversed(evs)):  # newest first: order must not matter
            meta = MessageMeta(f"motcua.events.{a}.{e['type']}", n + 1, datetime.now(UTC))
            row = process(json.dumps(e).encode(), meta)
            assert isinstance(row, EventRow)
            rows.append(row)
    EventWriter(clickhouse).write(rows, [])
    first = date(2026, 1, 1) + timedelta(days=period_start)
    period = Period.from_dates(first, first + timedelta(days=period_days - 1))
    now = datetime(2026, 1, 1, tzinfo=VN) + timedelta(days=now_day)
    agencies = tuple(f"{x}{run}" for x in ("P1", "P2", "P3"))
    report = report_ii06a.compute(clickhouse, period, now, agencies)
    total = report_ii06a.II06aRow(agency_code="total")
    for row in report.rows:
        check_identities(row)
        total.add(row)
    check_identities(total)
    assert total.received_total <= len(plans)


def agency_record(
    code: str, parent: str | None, level: str, valid_from: str, valid_to: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "reference.agency",
        "schema_version": 1,
        "occurred_at": "2022-01-01T00:00:00+07:00",
        "source": "test-suite",
        "agency_code": code,
        "name": f"Cơ quan {code}",
        "level": level,
        "parent_code": parent,
        "valid_from": valid_from,
        "valid_to": valid_to,
    }


async def test_parents_equal_children_plus_own_in_the_tree_of_the_period(
    system: Any, nc: NatsClient, clickhouse: Client
) -> None:
    # Catches: a parent row that is not the sum of its children plus its own, and a figure for a
    # period that uses another period's tree (an agency that moved after 1/7/2025).
    run = uuid.uuid4().hex[:6].upper()
    root, dist, commune, dept = (f"{x}{run}" for x in ("ROOT", "DIST", "XA", "SO"))
    records = [
        agency_record(root, None, "province", "2022-01-01"),
        agency_record(dept, root, "province", "2022-01-01"),
        agency_record(dist, root, "district", "2022-01-01", "2025-07-01"),
        # the commune belongs to the district until 1/7/2025, then directly to the province
        agency_record(commune, dist, "commune", "2022-01-01", "2025-07-01"),
        agency_record(commune, root, "commune", "2025-07-01"),
    ]
    for r in records:
        await publish(nc, r, subject=f"motcua.reference.agency.{r['agency_code']}")

    def tree_loaded() -> bool:
        return clickhouse.query(
            "SELECT count() FROM agencies_current WHERE agency_code LIKE {p:String}",
            parameters={"p": f"%{run}"},
        ).result_rows[0][0] == len(records)

    await eventually(tree_loaded)
    events = []
    for year in (2024, 2026):
        at = datetime(year, 3, 2, 9, tzinfo=VN)
        due = at + timedelta(days=3)
        # the district exists only before 1/7/2025
        codes = [(dist, "D"), (commune, "C1"), (commune, "C2"), (dept, "S"), (root, "R")]
        for code, suffix in codes if year == 2024 else codes[1:]:
            channel = "direct" if suffix == "C2" else "online"
            events.append(received(code, f"{year}{suffix}", at, due=due, channel=channel))
            events.append(resolved(code, f"{year}{suffix}", at + timedelta(days=2)))
    for e in events:
        await publish(nc, e)

    def all_stored() -> bool:
        return sum(stored(clickhouse, code) for code in (root, dist, commune, dept)) == len(events)

    await eventually(all_stored)
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        y2024 = (
            await http.get(
                "/v1/reports/ii06a",
                params={"from": "2024-03-01", "to": "2024-03-31", "agency": root},
            )
        ).json()
        y2026 = (
            await http.get(
                "/v1/reports/ii06a",
                params={"from": "2026-03-01", "to": "2026-03-31", "agency": root},
            )
        ).json()
        dist_2024 = (
            await http.get(
                "/v1/metrics/online_share",
                params={"from": "2024-03-01", "to": "2024-03-31", "agency": dist},
            )
        ).json()
    rows24 = {r["agency_code"]: r for r in y2024["rows"]}
    rows26 = {r["agency_code"]: r for r in y2026["rows"]}
    # 2024: root = own 1 + dept 1 + district (own 1 + commune 2) = 5
    assert rows24[root]["received_total"] == 5
    assert rows24[dist]["received_total"] == 3 and rows24[dist]["own"]["received_total"] == 1
    assert rows24[commune]["parent_code"] == dist
    # 2026: the district is gone from the tree; the commune sits under the province:
    # root = own 1 + dept 1 + commune 2 = 4
    assert rows26[commune]["parent_code"] == root
    assert dist not in rows26
    assert rows26[root]["received_total"] == 4
    for rows in (rows24, rows26):
        for code, row in rows.items():
            children = [r for r in rows.values() if r["parent_code"] == code]
            for field_name in ("received_total", "resolved_total", "pending_total"):
                assert row[field_name] == row["own"][field_name] + sum(
                    c[field_name] for c in children
                ), (code, field_name)
    # the district's 2024 figure includes its communes: 3 received, 2 online (D, C1)
    assert (dist_2024["groups"][0]["numerator"], dist_2024["groups"][0]["denominator"]) == (2, 3)
    assert y2024["provenance"]["org_tree"] and y2024["provenance"]["calendar"]


def test_ends_before_receipts_across_the_period_and_the_judging_instant(
    clickhouse: Client,
) -> None:
    # Catches: the flows read from the day counts counting a dossier the report leaves out, one
    # whose end an integrator dated before its receipt: received in the period but finished
    # before it, or finished in the period but received after the judging instant.
    from core.figures import rules
    from core.figures.refolder import catch_up
    from tests import reference_fold

    run = uuid.uuid4().hex[:8].upper()
    a = f"E{run}"

    def at(month: int, day: int, hour: int) -> datetime:
        return datetime(2026, month, day, hour, tzinfo=VN)

    def dossier(did: str, got: datetime, end: datetime | None) -> list[dict[str, Any]]:
        evs = [received(a, did, got, due=got + timedelta(days=5))]
        return evs + ([resolved(a, did, end)] if end else [])

    events = [
        *dossier("N1", at(3, 1, 10), at(2, 28, 20)),  # received in March, finished before it
        *dossier("N2", at(4, 1, 5), at(3, 31, 22)),  # finished in March, received after it
        *dossier("N3", at(3, 5, 9), at(3, 9, 9)),  # received 4, resolved 8
        *dossier("N4", at(2, 20, 9), None),  # carried 6, open 13
        *dossier("N5", at(3, 20, 10), at(3, 20, 8)),  # both in March: received 4, resolved 8
        *dossier("N6", at(3, 15, 18), at(3, 10, 9)),  # received after the instant judged below
        *dossier("N7", at(3, 15, 8), at(2, 27, 9)),  # as N1, received on the day judged below
    ]
    rows = []
    for n, e in enumerate(events):
        meta = MessageMeta(f"motcua.events.{a}.{e['type']}", n + 1, datetime.now(UTC))
        row = process(json.dumps(e).encode(), meta)
        assert isinstance(row, EventRow)
        rows.append(row)
    EventWriter(clickhouse).write(rows, [])
    catch_up(clickhouse)  # folded: the flows come from the day counts
    march = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31))
    after = report_ii06a.compute(clickhouse, march, at(5, 1, 0), (a,))
    # col4 = 3 (N3, N5, N6), col6 = 1 (N4); col8 = 3 (N3, N5, N6); col13 = 1 (N4)
    assert [r.as_dict() for r in after.rows] == [
        {
            "agency_code": a,
            "received_total": 4,
            "received_online": 3,
            "received_direct_postal": 0,
            "carried_over": 1,
            "resolved_total": 3,
            "resolved_early": 3,
            "resolved_on_time": 0,
            "resolved_late": 0,
            "pending_total": 1,
            "pending_within": 0,
            "pending_overdue": 1,
        }
    ]
    rule_set = rules.get()
    for now in (at(5, 1, 0), at(3, 15, 12), at(3, 1, 15)):
        report = report_ii06a.compute(clickhouse, march, now, (a,))
        want = reference_fold.ii06a(clickhouse, march, now, (a,), None, rule_set)
        assert report.events == sum(r.pop("events") for r in want)
        assert [r.as_dict() for r in report.rows] == want, now
        for r in report.rows:
            check_identities(r)
