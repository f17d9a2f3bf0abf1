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
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from core.feeds import FeedMonitor
from core.figures.facts import ENTITIES
from core.figures.reads import Read
from core.figures.reconciler import Reconciler
from core.figures.refolder import Refolder
from core.plans.monitor import PlanMonitor
from core.plans.source import PlanSource
from core.storage.pool import Abandoned, abandon_with
from services.metrics.snapshots import Snapshots
from services.metrics.status import MetricsStatus

log = logging.getLogger(__name__)


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
        self._clock = clock
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
        self._snapshots = Snapshots(
            client,
            self.status,
            folded_only=refolder is not None,
            full_snapshot_every=full_snapshot_every,
            clock=clock,
        )
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
        """Compute the current month's and year's figures by agency; write what changed
        (services/metrics/snapshots.py)."""
        return self._snapshots.compute_once()
