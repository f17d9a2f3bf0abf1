"""The figures' read model (core/figures/facts.py): facts that equal the fold of the parts,
steps that can be repeated or interrupted, and queries whose limits the engine enforces."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from core.figures.definitions import METRICS
from core.figures.facts import CURRENT, SHAPES
from core.figures.metric_query import metric_query
from core.figures.periods import Filters, Period
from core.figures.reads import Read, consistently
from core.figures.refolder import Refolder, catch_up
from core.storage.clickhouse import QueryLimits, connect
from core.zone import TZ
from services.metrics.service import MetricsService
from tests.helpers import dossier_event, received, resolved
from tests.test_pipeline import d
from tests.test_replay import store

MARCH = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31))
NOW = datetime(2026, 4, 2, tzinfo=UTC)


def figures(client: Client, agency: str, as_of: datetime | None = None) -> dict[str, Any]:
    return {
        m: [
            (r.group, r.numerator, r.denominator, r.events)
            for r in metric_query(
                m, period=MARCH, now=NOW, filters=Filters(agencies=(agency,)), as_of=as_of
            ).run(client)
        ]
        for m in METRICS
    }


def current_facts(client: Client, agency: str) -> list[tuple[Any, ...]]:
    """Each dossier's current facts, net of cancellations."""
    return [
        tuple(r)
        for r in client.query(
            "SELECT dossier_id, valid_from, received_at, end_at, end_effective_at, paid_at, "
            "apologies, sum(sign) AS n FROM dossier_facts "
            "WHERE agency_code = {a:String} AND valid_to = {c:DateTime64(3, 'UTC')} "
            "GROUP BY ALL HAVING n != 0 ORDER BY dossier_id",
            parameters={"a": agency, "c": CURRENT},
        ).result_rows
    ]


def lifecycle(agency: str, i: int) -> list[Any]:
    out = [received(agency, f"D{i}", d(2 + i), due=d(10 + i, 17), channel="online")]
    if i % 2:
        out.append(dossier_event("supplement_requested", agency, f"D{i}", d(3 + i, 9)))
        out.append(dossier_event("supplement_received", agency, f"D{i}", d(5 + i, 9)))
    if i % 3 != 2:
        out.append(resolved(agency, f"D{i}", d(9 + 2 * i)))
    return out


def test_facts_equal_the_fold_of_their_parts_and_a_repeat_writes_nothing(
    clickhouse: Client, agency: str
) -> None:
    # Catches: facts that drift from the parts they are folded from, and a refolder step that is
    # not idempotent (a repeat after a crash would then count a dossier twice).
    for i in range(6):
        store(clickhouse, lifecycle(agency, i)[:1])  # receipts first, one insert each
    before = figures(clickhouse, agency)  # all of it still in the delta
    catch_up(clickhouse)
    assert figures(clickhouse, agency) == before
    store(clickhouse, [e for i in range(6) for e in lifecycle(agency, i)[1:]])
    live = figures(clickhouse, agency)
    catch_up(clickhouse)
    assert figures(clickhouse, agency) == live
    assert any(live[m] for m in METRICS)
    keys = [(agency, f"D{i}") for i in range(6)]
    refolder = Refolder(clickhouse)
    assert refolder.sync("dossier", keys) == 0  # nothing left to write
    folded = clickhouse.query(
        "SELECT dossier_id, last_ingested_at, received_at, "
        "coalesce(resolved_at, returned_at, withdrawn_at) FROM dossiers "
        "WHERE agency_code = {a:String} ORDER BY dossier_id",
        parameters={"a": agency},
    ).result_rows
    assert [(r[0], r[1], r[2], r[3]) for r in current_facts(clickhouse, agency)] == [
        tuple(r) for r in folded
    ]


def test_a_step_repairs_whatever_an_interrupted_one_left(clickhouse: Client, agency: str) -> None:
    # Catches: a refolder that trusts its own last write, so a crash halfway through an insert
    # (a cancellation written without its replacement, or twice) is counted for ever.
    store(clickhouse, [e for i in range(4) for e in lifecycle(agency, i)])
    catch_up(clickhouse)
    expected = figures(clickhouse, agency)
    shape = SHAPES["dossier"]
    row = clickhouse.query(
        f"SELECT * EXCEPT sign FROM {shape.facts} WHERE agency_code = {{a:String}} "
        "AND dossier_id = 'D1' AND sign = 1 ORDER BY valid_from DESC LIMIT 1",
        parameters={"a": agency},
    )
    columns = list(row.column_names)
    values = list(row.result_rows[0])
    # the current row written twice, as a step interrupted and then re-run without its token
    clickhouse.insert(shape.facts, [[*values, 1]], column_names=[*columns, "sign"])
    assert figures(clickhouse, agency) != expected
    assert Refolder(clickhouse).sync("dossier", [(agency, "D1")]) == 1  # its cancellation
    assert figures(clickhouse, agency) == expected
    assert Refolder(clickhouse).sync("dossier", [(agency, "D1")]) == 0


def test_as_of_answers_are_the_same_from_the_parts_and_from_the_facts(
    clickhouse: Client, agency: str
) -> None:
    # Catches: a facts version that starts or ends at the wrong ingest instant, so an as-of
    # answer changes once the refolder has taken the events it was computed from.
    instants = []
    for i in range(3):
        store(clickhouse, lifecycle(agency, i))
        time.sleep(0.01)
        instants.append(datetime.now(UTC))
        time.sleep(0.01)
    store(clickhouse, [dossier_event("supplement_requested", agency, "D0", d(4, 9))])
    from_parts = [figures(clickhouse, agency, at) for at in instants]
    catch_up(clickhouse)
    assert [figures(clickhouse, agency, at) for at in instants] == from_parts
    assert from_parts[0] != from_parts[-1]


def test_every_api_query_is_stopped_past_its_time_and_memory(clickhouse_url: str) -> None:
    # Catches: a read client without limits, on which one crafted request could hold the engine
    # or the process's memory for as long as it likes.
    limited = connect(clickhouse_url, read_only=True, limits=QueryLimits(0.5, 64 * 1024 * 1024))
    started = time.monotonic()
    with pytest.raises(Exception, match="TIMEOUT_EXCEEDED|Timeout exceeded"):
        limited.query("SELECT count() FROM numbers(100000000000)")
    assert time.monotonic() - started < 10
    with pytest.raises(Exception, match="MEMORY_LIMIT_EXCEEDED|memory limit exceeded"):
        limited.query("SELECT length(groupArray(number)) FROM numbers(100000000)")
    assert limited.query("SELECT 1").result_rows == [(1,)]  # the client is still usable


def test_the_api_reads_with_the_configured_limits(system: Any) -> None:
    # Catches: limits that exist as settings but never reach the API's client.
    client = system.api_clickhouse
    seconds, memory, short_circuit = client.query(
        "SELECT getSetting('max_execution_time'), getSetting('max_memory_usage'), "
        "getSetting('short_circuit_function_evaluation')"
    ).result_rows[0]
    assert float(seconds) == 30.0
    assert int(memory) == 512 * 1024 * 1024
    assert str(short_circuit) == "disable"  # READER_SETTINGS


def test_a_history_of_more_than_a_hundred_months_is_folded_in_one_step(
    clickhouse: Client, agency: str
) -> None:
    # Catches: the engine's limit of 100 partitions per insert (a month each), which a province's
    # ten years of history exceeds in one refolder step or rebuild chunk.
    events = []
    for m in range(110):
        year, month = 2016 + m // 12, 1 + m % 12
        at = datetime(year, month, 3, 2, tzinfo=UTC)
        events += [
            received(agency, f"H{m}", at, due=at.replace(day=20)),
            resolved(agency, f"H{m}", at.replace(day=10)),
        ]
    store(clickhouse, events)
    catch_up(clickhouse)
    months = clickhouse.query(
        "SELECT uniqExact(part_month), sum(sign) FROM dossier_facts "
        "WHERE agency_code = {a:String} AND valid_to = {c:DateTime64(3, 'UTC')}",
        parameters={"a": agency, "c": CURRENT},
    ).result_rows[0]
    assert (int(months[0]), int(months[1])) == (110, 110)


def day_counts(client: Client, agency: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in client.query(
            "SELECT toString(anchor), day, sum(n) AS dossiers FROM dossier_days "
            "WHERE agency_code = {a:String} AND anchor IN ('finished', 'received') "
            "GROUP BY ALL HAVING dossiers != 0 ORDER BY ALL",
            parameters={"a": agency},
        ).result_rows
    ]


def month_counts(client: Client, agency: str, table: str) -> list[tuple[Any, ...]]:
    """Every count of `table` summed per anchor and month: the month counts (migration 0026)
    must equal the day counts so summed."""
    return [
        tuple(r)
        for r in client.query(
            "SELECT toString(anchor), toStartOfMonth(day) AS month, sum(n) AS dossiers, "
            f"sum(events), sum(minutes) FROM {table} WHERE agency_code = {{a:String}} "
            "GROUP BY ALL HAVING dossiers != 0 ORDER BY ALL",
            parameters={"a": agency},
        ).result_rows
    ]


def folded_day_counts(client: Client, agency: str) -> list[tuple[Any, ...]]:
    """The same counts from the parts' fold (the `dossiers` view), not from the facts."""
    return [
        tuple(r)
        for r in client.query(
            "SELECT anchor, day, count() FROM (SELECT a.1 AS anchor, "
            f"toDate(assumeNotNull(a.2), '{TZ}') AS day FROM dossiers "
            "ARRAY JOIN [('finished', coalesce(resolved_at, returned_at, withdrawn_at)), "
            "('received', received_at)] AS a "
            "WHERE agency_code = {a:String} AND a.2 IS NOT NULL) GROUP BY ALL ORDER BY ALL",
            parameters={"a": agency},
        ).result_rows
    ]


def test_the_day_counts_reconcile_with_the_fold_through_changes_and_a_rebuild(
    clickhouse: Client, agency: str
) -> None:
    # Catches: day counts (what whole past days of a flow figure are read from) that miss a
    # cancellation when a dossier's end moves to another day, count a version twice, or are not
    # emptied and refilled with the facts by a rebuild (`motcua replay`).
    store(clickhouse, [e for i in range(5) for e in lifecycle(agency, i)])
    catch_up(clickhouse)
    first = day_counts(clickhouse, agency)
    assert first == folded_day_counts(clickhouse, agency)
    # an earlier resolution of D2 and a late receipt: both move dossiers between days
    store(clickhouse, [resolved(agency, "D2", d(6)), received(agency, "D7", d(4), due=d(20))])
    catch_up(clickhouse)
    moved = day_counts(clickhouse, agency)
    assert moved == folded_day_counts(clickhouse, agency)
    assert moved != first
    Refolder(clickhouse).rebuild("dossier")
    assert day_counts(clickhouse, agency) == moved


def test_day_counts_cut_short_by_a_kill_are_not_read_and_are_reconciled_at_start(
    clickhouse: Client, agency: str
) -> None:
    # Catches: day counts that lost a view's write (the process killed after the facts insert,
    # before its view's: what the fault suite's repeated SIGKILLs found) read as if whole, and
    # a restart that never repairs them.
    store(clickhouse, [e for i in range(5) for e in lifecycle(agency, i)])
    catch_up(clickhouse)
    expected = figures(clickhouse, agency)
    counts = day_counts(clickhouse, agency)
    months = month_counts(clickhouse, agency, "dossier_months")
    assert months and months == month_counts(clickhouse, agency, "dossier_days")
    refolder = Refolder(clickhouse)
    # what a kill between the writes leaves: the mark dirty, some counts missing
    refolder._mark(SHAPES["dossier"], dirty=True)
    clickhouse.command(
        "ALTER TABLE dossier_days DELETE WHERE agency_code = {a:String} "
        "SETTINGS mutations_sync = 2",
        parameters={"a": agency},
    )
    assert refolder.counts_dirty("dossier")
    assert figures(clickhouse, agency) == expected  # the facts alone meanwhile
    service = MetricsService(clickhouse, refolder=refolder)
    service.refold_once()  # what the metrics service does first when it starts
    assert not refolder.counts_dirty("dossier")
    assert day_counts(clickhouse, agency) == counts
    assert month_counts(clickhouse, agency, "dossier_months") == months
    assert figures(clickhouse, agency) == expected
    # killed after the day counts' write, before the month counts' (a view on the day counts)
    refolder._mark(SHAPES["dossier"], dirty=True)
    clickhouse.command(
        "ALTER TABLE dossier_months DELETE WHERE agency_code = {a:String} "
        "SETTINGS mutations_sync = 2",
        parameters={"a": agency},
    )
    MetricsService(clickhouse, refolder=refolder).refold_once()  # the next process's start
    assert month_counts(clickhouse, agency, "dossier_months") == months
    assert figures(clickhouse, agency) == expected


def test_an_answer_a_refolder_write_overlapped_is_asked_again(clickhouse: Client) -> None:
    # Catches: a live answer that read the day counts before a refolder write and the facts
    # after it, kept as it was. It took away, from counts that never held them, the items the
    # write had just stored (a live figure once lost three new dossiers this way in CI).
    read = replace(Read.of(clickhouse, None), behind=frozenset({"dossier"}), counts=True)
    assert read.settled(clickhouse)
    asked: list[Read] = []

    def ask(current: Read) -> int:
        asked.append(current)
        if len(asked) == 1:  # a refolder write begins while the first answer is read
            clickhouse.insert(
                "counts_guard",
                [["dossier", 0, time.time_ns()]],
                column_names=["entity", "dirty", "seq"],
            )
        return len(asked)

    answer = consistently(clickhouse, None, read, ask)
    assert asked[0] is read and not read.settled(clickhouse)
    assert len(asked) >= 2 and answer == len(asked)  # asked again, the later answer kept
    # as of an instant, or from the facts alone, nothing needs the counts to agree
    assert replace(read, as_of=True).settled(clickhouse)
    assert replace(read, counts=False).settled(clickhouse)
