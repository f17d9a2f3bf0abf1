"""The metrics service: recomputes every figure continuously and records what changed.

Figures are recomputed on a timer even when no event arrived, because open dossiers turn overdue
by the clock alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from core.feeds import FeedMonitor
from core.figures.completeness import Reconciler
from core.figures.definitions import METRICS
from core.figures.facts import (
    CURRENT_SQL,
    ENTITIES,
    EPOCH,
    OPEN_MONTH,
    SHAPES,
    Entity,
    Refolder,
    as_utc,
    watermark_sql,
)
from core.figures.queries import Filters, Period, Read, metric_query
from core.plans.monitor import PlanMonitor
from core.plans.source import PlanSource
from core.reference.catalog import Catalog
from core.storage.pool import Abandoned, abandon_with
from core.zone import VN

log = logging.getLogger(__name__)

SNAPSHOT_COLUMNS = (
    "computed_at",
    "period",
    "period_start",
    "metric",
    "agency_code",
    "numerator",
    "denominator",
    "data_watermark",
)


@dataclass
class MetricsStatus:
    runs: int = 0
    last_run_at: datetime | None = None
    last_run_seconds: float = 0.0
    last_rows_written: int = 0
    last_full: bool = False  # every agency recomputed (else only those that changed)
    last_agencies: int = 0
    # the agencies the last incremental cycle recomputed (at most a few dozen shown)
    last_agency_codes: list[str] = field(default_factory=list)
    last_error: str | None = None
    # The refolder (core/figures/facts.py): how far the facts are behind the parts.
    refold_runs: int = 0
    refold_last_items: int = 0
    refold_last_seconds: float = 0.0
    refold_watermark: datetime | None = None
    refold_last_error: str | None = None
    # The plan monitor (target statuses and alerts), when this service runs one.
    plans_runs: int = 0
    plans_last_run_at: datetime | None = None
    plans_last_run_seconds: float = 0.0
    plans_last_transitions: int = 0
    plans_last_error: str | None = None
    # The plan files (core/plans/source.py): what is in force, and why a changed file is not.
    plans_loaded: list[str] = field(default_factory=list)
    plans_loaded_at: datetime | None = None
    plans_file_error: str | None = None
    # The feed monitor (silent feeds, missing manifests: core/feeds), when it runs.
    feeds_runs: int = 0
    feeds_last_run_at: datetime | None = None
    feeds_last_run_seconds: float = 0.0
    feeds_last_day: date | None = None  # the working day the last evaluation judged
    feeds_last_transitions: int = 0
    feeds_firing: int = 0
    feeds_last_error: str | None = None
    # The reconciler (daily manifests against the stored dossiers: core/figures/completeness)
    reconcile_runs: int = 0
    reconcile_last_run_at: datetime | None = None
    reconcile_last_run_seconds: float = 0.0
    reconcile_last_rows: int = 0
    reconcile_last_error: str | None = None


def current_periods(now: datetime) -> dict[str, tuple[date, Period]]:
    today = now.astimezone(VN).date()
    month_start = today.replace(day=1)
    year_start = today.replace(month=1, day=1)
    return {
        "month": (month_start, Period.from_dates(month_start, today)),
        "year": (year_start, Period.from_dates(year_start, today)),
    }


class MetricsService:
    def __init__(
        self,
        client: Client,
        *,
        refolder: Refolder | None = None,
        refold_interval: float = 1.0,
        refold_max_busy_share: float = 1.0,
        interval: float = 5.0,
        max_busy_share: float = 1.0,
        full_snapshot_every: float = 3600.0,
        monitor: PlanMonitor | None = None,
        plans_interval: float = 60.0,
        plan_source: PlanSource | None = None,
        feeds: FeedMonitor | None = None,
        feeds_interval: float = 60.0,
        reconciler: Reconciler | None = None,
        reconcile_interval: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._refolder = refolder
        self._refold_interval = refold_interval
        self._refold_max_busy_share = refold_max_busy_share
        self._interval = interval
        self._max_busy_share = max_busy_share
        self._full_every = full_snapshot_every
        self._clock = clock
        self._last: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._last_full = 0.0
        # What the last cycle saw: the newest part's write time (store clock) and its own now.
        self._last_folded: dict[Entity, datetime] = dict.fromkeys(ENTITIES, EPOCH)
        self._last_now: datetime | None = None
        self._data_watermark = EPOCH
        self._monitor = monitor
        self._plans_interval = plans_interval
        self._plan_source = plan_source
        self._last_plans = -float("inf")
        self._feeds = feeds
        self._feeds_interval = feeds_interval
        self._last_feeds = -float("inf")
        self._reconciler = reconciler
        self._reconcile_interval = reconcile_interval
        self._last_reconcile = -float("inf")
        self._reconciled = False
        self._trigger = asyncio.Event()
        # Set by stop(): it ends the loops, and the queries of a computation in flight are
        # refused from then on (core/storage/pool.py abandon_with; the runtime hands this
        # service checked clients), so a stop waits for one query, not a whole cycle (issue 14:
        # `motcua up` not exiting within 30 s of SIGINT while a 22 s cycle ran on a loaded
        # machine).
        self._halt = threading.Event()
        self.status = MetricsStatus()
        self._note_plans()

    def trigger(self) -> None:
        """Compute now instead of waiting for the timer (on demand)."""
        self._trigger.set()

    async def run(self) -> None:
        # The refolder is not cut short: a step cut between its facts and their day counts
        # would leave the counts to reconcile at the next start (13 s at 10M dossiers). Its
        # steps are bounded; it stops between two.
        refolding = asyncio.create_task(self._refold_loop(), name="refolder")
        try:
            with abandon_with(self._halt):  # copied into the computations' threads
                await self._compute_loop()
        finally:
            refolding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refolding

    async def _refold_loop(self) -> None:
        # Apart from the figure computations, so a slow one never lets the facts fall behind.
        while not self._halt.is_set() and self._refolder is not None:
            try:
                await asyncio.to_thread(self.refold_once)
            except Exception as exc:  # the store may be down: report, keep the loop alive
                self.status.refold_last_error = str(exc)
                log.warning("refolding failed: %s", exc)
                # A write that failed between the facts and their day counts leaves the counts
                # marked dirty, and questions read the facts alone (exact, slower) until they
                # are reconciled: at the next cycle, not the next start.
                self._reconciled = False
            # Behind after a burst is harmless (questions fold the rest from the parts); taking
            # the CPU the ingest needs during one is not.
            busy = self.status.refold_last_seconds
            await asyncio.sleep(
                max(self._refold_interval, busy * (1 / self._refold_max_busy_share - 1))
            )

    def refold_once(self) -> int:
        """Bring the facts up to the parts (a few bounded steps); returns items refolded."""
        assert self._refolder is not None
        started = time.perf_counter()
        items = 0
        if not self._reconciled:
            # a previous process may have been killed, or a write failed, between a facts write
            # and its day counts'
            for entity in ENTITIES:
                if self._refolder.counts_dirty(entity):
                    years = self._refolder.reconcile_counts(entity)
                    log.info("day counts of %s reconciled with the facts: %s", entity, years)
            self._reconciled = True
        for entity in ENTITIES:
            for _ in range(20):  # a backlog is taken over several cycles, not all at once
                step = self._refolder.step(entity)
                items += step.items
                if not step.items or self._halt.is_set():  # a stop waits for one step at most
                    break
            if entity == "dossier":
                self.status.refold_watermark = step.watermark
        s = self.status
        s.refold_runs += 1
        s.refold_last_items = items
        s.refold_last_seconds = time.perf_counter() - started
        s.refold_last_error = None
        return items

    async def _compute_loop(self) -> None:
        while not self._halt.is_set():
            try:
                await asyncio.to_thread(self.compute_once)
            except Abandoned:  # stopping: the next start computes again
                break
            except Exception as exc:  # the store may be down: report, keep the loop alive
                self.status.last_error = str(exc)
                log.warning("metrics computation failed: %s", exc)
            if self._monitor is not None and (
                time.monotonic() - self._last_plans >= self._plans_interval
            ):
                await self._evaluate_plans()
            if self._feeds is not None and (
                time.monotonic() - self._last_feeds >= self._feeds_interval
            ):
                await self._evaluate_feeds()
            if self._reconciler is not None and (
                time.monotonic() - self._last_reconcile >= self._reconcile_interval
            ):
                await self._reconcile()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trigger.wait(), self._pause())
            self._trigger.clear()

    def _pause(self) -> float:
        """Until the next cycle: the interval, or longer after a slow cycle (the busy share)."""
        busy = self.status.last_run_seconds
        return max(self._interval, busy * (1 / self._max_busy_share - 1))

    async def _evaluate_plans(self) -> None:
        # Targets are evaluated less often than figures: a status moves over days, and a step
        # reads a year of daily counts per target.
        assert self._monitor is not None
        s = self.status
        if self._plan_source is not None:
            # A new or corrected plan file takes effect here, without a restart.
            await asyncio.to_thread(self._plan_source.refresh)
            self._note_plans()
        try:
            run = await self._monitor.step(self._clock())
        except Abandoned:  # stopping: evaluated again at the next start
            return
        except Exception as exc:  # store or NATS down: the transitions are retried next time
            s.plans_last_error = str(exc)
            log.warning("plan evaluation failed: %s", exc)
            return
        self._last_plans = time.monotonic()
        s.plans_runs += 1
        s.plans_last_run_at = self._clock()
        s.plans_last_run_seconds = run.seconds
        s.plans_last_transitions = len(run.transitions)
        s.plans_last_error = None

    async def _evaluate_feeds(self) -> None:
        # Its own cadence: a working day is judged once it has passed, so once a minute notices
        # a silent day soon enough, and a step reads only the last few weeks of receipts.
        assert self._feeds is not None
        s = self.status
        try:
            run = await self._feeds.step(self._clock())
        except Abandoned:  # stopping: evaluated again at the next start
            return
        except Exception as exc:  # store or NATS down: the transitions are retried next time
            s.feeds_last_error = str(exc)
            log.warning("feed evaluation failed: %s", exc)
            return
        self._last_feeds = time.monotonic()
        s.feeds_runs += 1
        s.feeds_last_run_at = self._clock()
        s.feeds_last_run_seconds = run.seconds
        s.feeds_last_day = run.day
        s.feeds_last_transitions = len(run.transitions)
        s.feeds_firing = self._feeds.firing
        s.feeds_last_error = None

    async def _reconcile(self) -> None:
        # Its own cadence: manifests come once a day, and a late event that closes a gap is
        # judged within the interval. The live read (facts and the parts not yet folded into
        # them), as an auditor's question would see it.
        assert self._reconciler is not None
        reconciler, s = self._reconciler, self.status
        started = time.perf_counter()
        try:
            rows = await asyncio.to_thread(
                lambda: reconciler.step(self._clock(), Read.of(self._client, None))
            )
        except Abandoned:  # stopping: the next start judges every manifest again
            return
        except Exception as exc:  # store down: what changed is judged at the next step
            s.reconcile_last_error = str(exc)
            log.warning("reconciliation failed: %s", exc)
            return
        if not reconciler.backlog:  # a first start's backlog goes on at the next cycle
            self._last_reconcile = time.monotonic()
        s.reconcile_runs += 1
        s.reconcile_last_run_at = self._clock()
        s.reconcile_last_run_seconds = time.perf_counter() - started
        s.reconcile_last_rows = rows
        s.reconcile_last_error = None

    def _note_plans(self) -> None:
        source, s = self._plan_source, self.status
        if source is not None:
            s.plans_loaded = sorted(source)
            s.plans_loaded_at = source.loaded_at
            s.plans_file_error = source.error

    def stop(self) -> None:
        self._halt.set()
        self._trigger.set()

    def compute_once(self) -> int:
        """Compute the current month's and year's figures by agency; write what changed.

        Incremental: a cycle recomputes only the agencies with newly stored events or with an
        open dossier whose due time passed since the last cycle; every figure of every agency is
        recomputed at the first cycle, when the local day changes (day-based rules move then)
        and every `full_snapshot_every` seconds."""
        started = time.perf_counter()
        now = self._clock()
        today = now.astimezone(VN).date()
        full = (
            time.monotonic() - self._last_full >= self._full_every
            or self._last_now is None
            or self._last_now.astimezone(VN).date() != today
        )
        changed, folded = self._changes(now)
        agencies: tuple[str, ...] = ()
        if not full:
            agencies = tuple(sorted(changed))
        rows: list[list[Any]] = []
        if full or agencies:
            watermark = self._data_watermark
            read = self._read()
            for period_name, (period_start, period) in current_periods(now).items():
                catalog = Catalog.load(self._client, period.last_day)
                eligible = tuple(p.code for p in catalog if p.full_online_eligible)
                for metric_id in METRICS:
                    query = metric_query(
                        metric_id,
                        period=period,
                        now=now,
                        filters=Filters(agencies=agencies),
                        group_by="agency",
                        full_online_eligible=eligible,
                    )
                    for r in query.run(self._client, read):
                        key = (period_name, metric_id, r.group or "")
                        value = (r.numerator, r.denominator)
                        if full or self._last.get(key) != value:
                            rows.append(
                                [
                                    now,
                                    period_name,
                                    period_start,
                                    metric_id,
                                    r.group or "",
                                    r.numerator,
                                    r.denominator,
                                    watermark,
                                ]
                            )
                        self._last[key] = value
        if rows:
            self._client.insert("metric_snapshots", rows, column_names=list(SNAPSHOT_COLUMNS))
        if full:
            self._last_full = time.monotonic()
        self._last_now = now
        self._last_folded = folded
        s = self.status
        s.runs += 1
        s.last_run_at = now
        s.last_run_seconds = time.perf_counter() - started
        s.last_rows_written = len(rows)
        s.last_full = full
        s.last_agencies = len(agencies)
        s.last_agency_codes = list(agencies[:50])
        s.last_error = None
        return len(rows)

    def _changes(self, now: datetime) -> tuple[set[str], dict[Entity, datetime]]:
        """Agencies with parts written since the last cycle or an open dossier that fell due
        since then, and per entity the newest such part's write time (skip indexes: a few
        granules, not the history). With a refolder, only parts already in the facts (what the
        cycle reads); the rest are seen by a later cycle."""
        due_from = self._last_now or now
        params: dict[str, Any] = {"due_from": due_from, "now": now}
        selects = []
        for entity in ENTITIES:
            shape = SHAPES[entity]
            params[f"since_{entity}"] = self._last_folded[entity]
            bound = f"folded_at > {{since_{entity}:DT}}"
            if self._refolder is not None:
                bound += f" AND folded_at <= {watermark_sql(entity)}"
            selects.append(
                f"SELECT agency_code, '{entity}' AS entity, folded_at, ingested_at "
                f"FROM {shape.parts} WHERE {bound}"
            )
        sql = (
            "SELECT agency_code, entity, max(folded_at), max(ingested_at) FROM ("
            + " UNION ALL ".join(selects)
            + " UNION ALL SELECT agency_code, '', {now:DT}, toDateTime64(0, 3, 'UTC') "
            f"FROM dossier_facts WHERE part_month = {OPEN_MONTH:d} AND valid_to = {CURRENT_SQL} "
            "AND due_at > {due_from:DT} AND due_at <= {now:DT}"
            ") GROUP BY agency_code, entity"
        )
        rows = self._client.query(
            sql.replace(":DT}", ":DateTime64(3, 'UTC')}"), parameters=params
        ).result_rows
        folded = dict(self._last_folded)
        for _, entity, folded_at, ingested_at in rows:
            if entity in folded:
                folded[entity] = max(folded[entity], as_utc(folded_at))
                # a snapshot's data watermark: the newest ingest time it has read
                self._data_watermark = max(self._data_watermark, as_utc(ingested_at))
        return {str(r[0]) for r in rows}, folded

    def _read(self) -> Read:
        """With a refolder, the facts alone: a cycle snapshots what the refolder has folded
        (its data watermark says how far that reaches), without folding the parts it has not
        taken yet once per figure (at thousands of events a second that fold was most of the
        cycle's work, taken from the ingest). Without one (tests), the live read."""
        if self._refolder is None:
            return Read.of(self._client, None)
        return Read.folded(self._client)
