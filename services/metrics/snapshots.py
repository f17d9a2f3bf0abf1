"""The figures' snapshots: each cycle recomputes the current month's and year's figures by
agency and writes to metric_snapshots what changed (services/metrics/service.py runs it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures.definitions import METRICS
from core.figures.fact_sql import watermark_sql
from core.figures.facts import CURRENT_SQL, ENTITIES, EPOCH, OPEN_MONTH, SHAPES, Entity
from core.figures.metric_query import metric_query
from core.figures.periods import Filters, Period
from core.figures.reads import Read, newest_folds
from core.reference.catalog import Catalog
from core.zone import VN, utc
from services.metrics.status import MetricsStatus

# How far before the newest part's write time the first cycle looks (Snapshots._first_since).
FIRST_LOOKBACK = timedelta(hours=1)

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


def current_periods(now: datetime) -> dict[str, tuple[date, Period]]:
    today = now.astimezone(VN).date()
    month_start = today.replace(day=1)
    year_start = today.replace(month=1, day=1)
    return {
        "month": (month_start, Period.from_dates(month_start, today)),
        "year": (year_start, Period.from_dates(year_start, today)),
    }


class Snapshots:
    """What one cycle recomputes and writes, and what it remembers for the next."""

    def __init__(
        self,
        client: Client,
        status: MetricsStatus,
        *,
        folded_only: bool,
        full_snapshot_every: float,
        clock: Callable[[], datetime],
    ) -> None:
        self._client = client
        self.status = status
        # With a refolder: a cycle reads what it has folded (Read.folded), not the parts.
        self._folded_only = folded_only
        self._full_every = full_snapshot_every
        self._clock = clock
        self._last: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._last_full = 0.0
        # What the last cycle saw: the newest part's write time (store clock) and its own now.
        self._last_folded: dict[Entity, datetime] = dict.fromkeys(ENTITIES, EPOCH)
        self._last_now: datetime | None = None
        self._data_watermark = EPOCH

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
        since = self._last_folded if self._last_now is not None else self._first_since()
        selects = []
        for entity in ENTITIES:
            shape = SHAPES[entity]
            params[f"since_{entity}"] = since[entity]
            bound = f"folded_at > {{since_{entity}:DT}}"
            if self._folded_only:
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
        folded = dict(since)
        for _, entity, folded_at, ingested_at in rows:
            if entity in folded:
                folded[entity] = max(folded[entity], utc(folded_at))
                # a snapshot's data watermark: the newest ingest time it has read
                self._data_watermark = max(self._data_watermark, utc(ingested_at))
        return {str(r[0]) for r in rows}, folded

    def _first_since(self) -> dict[Entity, datetime]:
        """Where the first cycle looks for parts: the last FIRST_LOOKBACK before the newest
        part's write time (parts_progress, a row per entity). The first cycle recomputes every
        agency anyway; it needs the newest write time and the newest ingest time it reads, and
        reading every part ever written for them took 1.35 s at 10M dossiers (33.8M parts),
        growing with the history. The newest ingested part is among them unless a later refold
        (`motcua replay`) rewrote older parts after it; its ingest time then shows from the
        next cycle that reads it."""
        newest = newest_folds(self._client)
        return {
            e: max(EPOCH, newest[e] - FIRST_LOOKBACK) if e in newest else EPOCH for e in ENTITIES
        }

    def _read(self) -> Read:
        """With a refolder, the facts alone: a cycle snapshots what the refolder has folded
        (its data watermark says how far that reaches), without folding the parts it has not
        taken yet once per figure (at thousands of events a second that fold was most of the
        cycle's work, taken from the ingest). Without one (tests), the live read."""
        if not self._folded_only:
            return Read.of(self._client, None)
        return Read.folded(self._client)
