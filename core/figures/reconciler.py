"""The reconciler, the metrics service's step: judges again the agency-days that changed since
its last step (core/figures/reconciliation.py judges them)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures.fact_sql import watermark_sql
from core.figures.facts import SHAPES, Entity
from core.figures.manifests import Key
from core.figures.reads import Read
from core.figures.reconciliation import OPEN_WINDOW_DAYS, evaluate
from core.zone import TZ_SQL, VN, utc

_DT = "DateTime64(3, 'UTC')"


# The most agency-days one step judges: a first start on a store with years of manifests
# catches up over several steps instead of one long one.
MAX_KEYS_PER_STEP = 2000


# --- what changed since the last step ----------------------------------------------------------


def _changed_items(entity: Entity, dates: tuple[str, str]) -> str:
    """The local days of `dates` of an entity's items with a part folded in (since, until]: both
    its current facts and the versions superseded since, so a moved day is judged on both sides."""
    shape = SHAPES[entity]
    days = ", ".join(f"toDate({d}, {TZ_SQL})" for d in dates)
    return f"""
SELECT agency_code, arrayJoin([{days}]) AS day
FROM {shape.facts}
WHERE valid_to > {{since:{_DT}}} AND (agency_code, {shape.key}) IN (
    SELECT agency_code, {shape.key} FROM {shape.parts}
    WHERE folded_at > {{since:{_DT}}} AND folded_at <= {{until:{_DT}}})
    AND {dates[0]} IS NOT NULL
"""


_CHANGED_SQL = f"""
SELECT DISTINCT agency_code, day FROM manifests
WHERE ingested_at > {{since:{_DT}}} AND ingested_at <= {{until:{_DT}}}
UNION DISTINCT {_changed_items("dossier", ("received_at", "end_at"))}
UNION DISTINCT {_changed_items("feedback", ("filed_at", "answered_at"))}
"""

_MANIFEST_DAYS_SQL = """
SELECT agency_code, day FROM manifests
WHERE agency_code IN {agencies:Array(String)} AND day >= {from_day:Date}
GROUP BY agency_code, day
"""


def changed_keys(client: Client, since: datetime, until: datetime, today: date) -> set[Key]:
    """Agency-days to judge again: a manifest arrived for them, or an item received, finished,
    filed or answered on them changed. A dossier's change on day d also moves its agency's open
    count at the end of every later day, so the agency's manifest days from d on (within the open
    window) come along; a change dated today moves no ended day."""
    rows = client.query(_CHANGED_SQL, parameters={"since": since, "until": until}).result_rows
    keys = {(str(a), d) for a, d in rows if d is not None}
    window = today - timedelta(OPEN_WINDOW_DAYS)
    earliest: dict[str, date] = {}
    for agency, day in keys:
        if window <= day < today:
            earliest[agency] = min(day, earliest.get(agency, day))
    if earliest:
        recent = client.query(
            _MANIFEST_DAYS_SQL,
            parameters={"agencies": sorted(earliest), "from_day": min(earliest.values())},
        ).result_rows
        keys |= {(str(a), d) for a, d in recent if d >= earliest[str(a)]}
    return keys


def _caught_up(entity: Entity) -> str:
    """The instant up to which an entity's changes are in its facts: its refolder watermark
    while parts were folded after it (parts_progress, 0021), else now."""
    wm = watermark_sql(entity)
    folded = f"(SELECT max(folded_at) FROM parts_progress WHERE entity = '{entity}')"
    return f"if(ifNull({folded} > {wm}, 0), {wm}, now64(3))"


_UNTIL_SQL = f"SELECT least(now64(3), {_caught_up('dossier')}, {_caught_up('feedback')})"


class Reconciler:
    """Judges the agency-days that changed since its last step (run by the metrics service).

    It goes on from the newest `data_until` it wrote, so a restart misses nothing that arrived
    while it was down; on an empty table it judges every manifest day, MAX_KEYS_PER_STEP at a
    time, oldest first (`backlog` says how many are left)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._since: datetime | None = None
        self._backlog: list[Key] = []
        # what this reconciler last wrote per agency-day (evaluate's `written`)
        self._written: dict[Key, tuple[Any, ...]] = {}

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def step(self, now: datetime, read: Read) -> int:
        """Judge what changed since the last step; returns the rows written. `now` stamps the
        judgments (the service's clock); what changed is told by the store's own clock, which
        stamped the ingest and fold times it is compared with."""
        today = now.astimezone(VN).date()
        # Changed items are found through their facts, so a step looks no further than the
        # refolder got: a part folded after its watermark is seen by a later step, not lost.
        until = utc(self._client.query(_UNTIL_SQL).result_rows[0][0])
        if self._since is not None and until <= self._since:
            until = self._since
        keys: set[Key] = set()
        if self._since is None:
            last, judged = self._client.query(
                "SELECT max(data_until), count() FROM reconciliation_days"
            ).result_rows[0]
            if judged:
                self._since = utc(last)
            else:
                rows = self._client.query("SELECT DISTINCT agency_code, day FROM manifests")
                self._backlog = [(str(a), d) for a, d in rows.result_rows]
        if self._since is not None:
            keys = changed_keys(self._client, self._since, until, today)
        self._since = until
        pending = sorted(set(self._backlog) | keys, key=lambda k: (k[1], k[0]))
        batch, self._backlog = pending[:MAX_KEYS_PER_STEP], pending[MAX_KEYS_PER_STEP:]
        if not batch:
            return 0
        return len(evaluate(self._client, batch, now, read, until, self._written))
