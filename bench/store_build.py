"""Building a chDB store at a province's real history size, for the query benchmark.

The store is written the way the system writes it: migrations, the working-day calendar, the
reference seed through the ingest's reference processor and writer (what `motcua catalog load
--direct` does; `motcua up` publishes the same file through NATS to the same writer), then the
simulator's events through `processor.process` and `EventWriter.write` in 10,000-event inserts.
Only the growth beyond what the simulator makes in reasonable time is done in SQL, by copying
stored events under new ids: the copies are real inserts into `events`, so the store's own
materialized views fold them exactly as they fold the ingest's inserts.

This module runs inside the build's child process (chDB opens one data directory per process
and keeps it until the process ends, and `motcua replay` must open it afterwards).
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

# The simulated province year: arrivals from 1 January (midnight, +07:00) up to 1 December, i.e.
# dossiers received from 1 January to 30 November, their events up to 1 December.
BASE_YEAR = 2026
BATCH = 10_000  # events per insert, as the ingest flushes (bench/ingest_bench.py phase B)
RELEASE_STEP = timedelta(days=7)  # how much simulated time is turned into events at once
PUBLISH_LAG = timedelta(seconds=2)  # occurred_at → published_at: an integrator publishing at once
# A suffix marks every copied entity id. ':' is allowed by the contract's EntityId pattern but
# never produced by the simulator, so originals and copies are told apart by it alone.
COPY_MARK = ":"


@dataclass(frozen=True)
class Layout:
    """How many dossiers the store holds and how they are made.

    `per_year` dossiers are received in BASE_YEAR (Jan 1 .. Dec 1); `simulated` of them come
    from the simulator and the rest from in-year copies (same times, new ids). Each earlier
    year is a copy of the whole BASE_YEAR shifted back by whole years, so every year has the
    same volume per day and only the length of the history differs between stores.
    """

    dossiers: int
    per_year: int
    simulated: int
    seed: int

    @property
    def years(self) -> int:
        return max(1, round(self.dossiers / self.per_year))

    @property
    def in_year_copies(self) -> int:
        # Copies on top of the simulated originals, so that BASE_YEAR reaches about per_year.
        return max(0, round(self.per_year / self.simulated) - 1)

    def describe(self) -> str:
        first = BASE_YEAR - self.years + 1
        made = f"{self.simulated:,} simulated" + (
            f" × {self.in_year_copies + 1} (in-year copies)" if self.in_year_copies else ""
        )
        history = (
            f"; years {first}..{BASE_YEAR - 1} are copies of {BASE_YEAR} shifted back by whole "
            f"years ({self.years - 1} {'copy' if self.years == 2 else 'copies'})"
            if self.years > 1
            else ""
        )
        return (
            f"{self.years * self.per_year:,} dossiers: about {self.per_year:,} received per year, "
            f"{BASE_YEAR}-01-01 .. {BASE_YEAR}-12-01 ({made}){history}"
        )


def peak_rss_mb() -> float:
    """This process's peak resident set (ru_maxrss is in KiB on Linux); chDB runs in-process,
    so the engine's memory is in it."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepare(client: Client) -> dict[str, Any]:
    """Migrations, calendar and reference seed, as `motcua up` makes an empty store ready."""
    from core.ingestion.reference_loader import read_catalog_file, store_events
    from core.reference.calendar import WorkingCalendar
    from core.reference.calendar_store import sync_calendar
    from core.reference.seed import SEED_FILE
    from core.storage.migrate import migrate

    applied = migrate(client)
    days = sync_calendar(client, WorkingCalendar.load())
    counts = store_events(client, read_catalog_file(SEED_FILE))
    return {
        "migrations": applied,
        "calendar_days": days,
        "reference": {k: v.new for k, v in counts.items()},
    }


def dossiers_per_working_day(dossiers: int, start: date, end: date) -> float:
    """The simulator's rate (per full working day) that yields about `dossiers` arrivals on
    the days start..end-1, given its weekday and holiday scaling."""
    from tools.simulator.model import _day_scale

    scale, day = 0.0, start
    while day < end:
        scale += _day_scale(day)
        day += timedelta(days=1)
    return dossiers / scale


def simulated_events(seed: int, dossiers: int) -> Iterator[list[Any]]:
    """The simulator's BASE_YEAR history, a week of simulated time at a time.

    The same arrivals and the same release as `tools.simulator.model.generate(seed, start,
    end, dossiers_per_day)`: generate() releases the whole year in one call, which would hold
    every event of the year (some 5 million pydantic objects) in memory at once; releasing in
    steps yields exactly the same events in the same order (Timeline.release's contract)."""
    from tools.simulator.model import Timeline, arrivals
    from tools.simulator.workdays import ICT

    start = datetime(BASE_YEAR, 1, 1, tzinfo=ICT)
    end = datetime(BASE_YEAR, 12, 1, tzinfo=ICT)
    rate = dossiers_per_working_day(dossiers, start.date(), end.date())
    log(f"simulator: seed {seed}, {rate:,.0f} dossiers per working day, {start:%F} .. {end:%F}")
    timeline = Timeline()
    timeline.add(arrivals(seed, start, end, rate))
    until = start
    while until < end:
        until = min(end, until + RELEASE_STEP)
        yield timeline.release(until)


def write_simulated(client: Client, seed: int, dossiers: int) -> dict[str, Any]:
    """Simulated events → processor.process → EventWriter.write, 10,000 events per insert."""
    from core.ingestion.common import MessageMeta
    from core.ingestion.processor import EventRow, process
    from core.ingestion.writer import EventWriter
    from schemas.subjects import event_subject

    writer = EventWriter(client)
    stored = seq = 0
    write_s = 0.0
    pending: list[EventRow] = []
    started = last_log = time.perf_counter()

    def flush() -> None:
        nonlocal stored, write_s
        began = time.perf_counter()
        result = writer.write(pending, [])
        write_s += time.perf_counter() - began
        if result.rejected or result.stored != len(pending):
            raise RuntimeError(f"the store refused events: {result.rejected[:1]}")
        stored += result.stored
        pending.clear()

    for events in simulated_events(seed, dossiers):
        for event in events:
            seq += 1
            meta = MessageMeta(
                subject=event_subject(event.agency_code, event.type),
                stream_seq=seq,
                published_at=event.occurred_at + PUBLISH_LAG,
            )
            row = process(event.model_dump_json().encode(), meta)
            if not isinstance(row, EventRow):  # the simulator's events are valid by design
                raise RuntimeError(f"simulated event refused: {row.reason}: {row.detail}")
            pending.append(row)
            if len(pending) >= BATCH:
                flush()
        now = time.perf_counter()
        if now - last_log >= 15:
            log(
                f"  {stored:,} events stored up to {events[-1].occurred_at:%F} "
                f"({stored / (now - started):,.0f}/s, peak RSS {peak_rss_mb():,.0f} MB)"
                if events
                else f"  {stored:,} events stored"
            )
            last_log = now
    if pending:
        flush()
    seconds = time.perf_counter() - started
    return {
        "events": stored,
        "seconds": seconds,
        "events_per_s": stored / seconds,
        "write_seconds": write_s,
        "write_events_per_s": stored / write_s if write_s else None,
        "peak_rss_mb": peak_rss_mb(),
    }


def _copy_sql(client: Client, suffix: str, years_back: int, source: str) -> str:
    """INSERT … SELECT of `events` onto itself: a fresh event_id, the entity id suffixed, every
    DateTime64 column shifted back `years_back` years, every other column as stored.

    The column list is read from the table, so a column added by a later migration is copied
    too (and an ALIAS or MATERIALIZED one is left to the table to compute)."""
    columns = client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'events' AND default_kind NOT IN ('ALIAS', 'MATERIALIZED') "
        "ORDER BY position"
    ).result_rows
    names, exprs = [], []
    for name, kind in columns:
        names.append(f"`{name}`")
        if name == "event_id":
            exprs.append("generateUUIDv4()")
        elif name == "entity_id":
            exprs.append(f"concat(entity_id, '{suffix}')")
        elif "DateTime64" in kind and years_back:
            exprs.append(f"addYears(`{name}`, -{years_back:d})")
        else:
            exprs.append(f"`{name}`")
    return (
        f"INSERT INTO events ({', '.join(names)}) SELECT {', '.join(exprs)} FROM events "
        f"WHERE {source}"
    )


def _count_events(client: Client) -> int:
    return int(client.query("SELECT count() FROM events").result_rows[0][0])


def _base_year_rows() -> str:
    # Partition pruning (PARTITION BY toYear(occurred_at)) keeps each copy to the base year.
    return f"toYear(occurred_at) = {BASE_YEAR:d}"


def copy_events(client: Client, layout: Layout, *, in_year: bool = True) -> list[dict[str, Any]]:
    """In-year copies first (the base year reaches per_year), then one shifted copy of the whole
    base year per earlier year. One INSERT per copy keeps memory to one copy's blocks.
    `in_year` False: the base year is complete already (a store grown from a built one)."""
    done: list[dict[str, Any]] = []
    plan: list[tuple[str, str, int, str]] = [
        (
            f"in-year copy {c}",
            f"{COPY_MARK}c{c}",
            0,
            f"{_base_year_rows()} AND position(entity_id, '{COPY_MARK}') = 0",
        )
        for c in range(1, (layout.in_year_copies if in_year else 0) + 1)
    ]
    plan += [
        (
            f"year {BASE_YEAR - k} (base shifted {k} y)",
            f"{COPY_MARK}y{k}",
            k,
            f"{_base_year_rows()} AND position(entity_id, '{COPY_MARK}y') = 0",
        )
        for k in range(1, layout.years)
    ]
    for i, (label, suffix, years_back, source) in enumerate(plan, 1):
        before = _count_events(client)
        began = time.perf_counter()
        client.command(_copy_sql(client, suffix, years_back, source), settings={"async_insert": 0})
        seconds = time.perf_counter() - began
        rows = _count_events(client) - before
        step = {
            "copy": label,
            "rows": rows,
            "seconds": seconds,
            "rows_per_s": rows / seconds,
            "peak_rss_mb": peak_rss_mb(),
        }
        done.append(step)
        log(
            f"copy {i}/{len(plan)} {label}: {rows:,} events in {seconds:,.1f} s "
            f"({rows / seconds:,.0f}/s), peak RSS {step['peak_rss_mb']:,.0f} MB"
        )
    return done


def evaluate_plans(client: Client) -> dict[str, Any]:
    """One evaluation of the packaged plans, as the metrics service runs every minute: without
    it `target_status` is empty and GET /v1/targets and the pages read nothing."""
    from core.plans.monitor import PlanMonitor
    from core.plans.source import PlanSource

    began = time.perf_counter()
    run = asyncio.run(PlanMonitor(client, PlanSource(), publish=None).step(datetime.now(UTC)))
    return {
        "statuses": len(run.statuses),
        "rows_written": run.rows_written,
        "seconds": time.perf_counter() - began,
    }


def store_counts(client: Client) -> dict[str, Any]:
    """What the store holds, per year of reception (dossiers) and in total (events)."""
    per_year = client.query(
        "SELECT toYear(received_at, 'Asia/Ho_Chi_Minh') AS y, count() FROM events "
        "WHERE type = 'dossier.received' GROUP BY y ORDER BY y"
    ).result_rows
    return {
        "events": _count_events(client),
        "dossiers_received_by_year": {str(y): int(n) for y, n in per_year},
        "max_ingested_at": _utc_iso(
            client.query("SELECT max(ingested_at) FROM events").result_rows[0][0]
        ),
    }


def _utc_iso(value: datetime) -> str:
    # clickhouse-connect gives a DateTime64(3, 'UTC') naive or aware depending on its settings.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def build(store: Path, layout: Layout, plans: bool, from_base: bool = False) -> dict[str, Any]:
    """Everything the child process does; returns the figures for the report.

    `from_base`: the store is a copy of a built single-year store with this layout's base
    year (the parent copied its directory): only the earlier years are added. The simulator
    is deterministic for a seed, so this differs from a build from scratch only in ingested_at.
    """
    from core.storage.clickhouse import connect

    began = time.perf_counter()
    client = connect(f"chdb://{store}", create_database=True)
    log(f"building {store}: {layout.describe()}")
    report: dict[str, Any] = {"layout": {**asdict(layout), "description": layout.describe()}}
    report["prepare"] = prepare(client)
    if from_base:
        years = [
            int(r[0])
            for r in client.query("SELECT DISTINCT toYear(occurred_at) FROM events").result_rows
        ]
        if years != [BASE_YEAR]:
            raise RuntimeError(f"the base store must hold {BASE_YEAR} only, not {years}")
    else:
        report["simulated"] = write_simulated(client, layout.seed, layout.simulated)
        sim = report["simulated"]
        log(
            f"simulated: {sim['events']:,} events in {sim['seconds']:,.0f} s "
            f"({sim['events_per_s']:,.0f}/s; inserts alone {sim['write_events_per_s']:,.0f}/s)"
        )
    report["copies"] = copy_events(client, layout, in_year=not from_base)
    if plans:
        report["plans"] = evaluate_plans(client)
        log(f"plan evaluation: {report['plans']}")
    report["counts"] = store_counts(client)
    report["build_seconds"] = time.perf_counter() - began
    report["peak_rss_mb"] = peak_rss_mb()
    client.close()
    return report
