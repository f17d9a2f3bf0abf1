"""The feed monitor: reads each feed's recent working days, judges them, and publishes and stores
the alert transitions the way the plan monitor does (core/plans/monitor.py). Runs inside the
metrics service (services/metrics/service.py) on its own cadence.

Bounded: an evaluation reads the dossiers received on the last `rule.days` working days and the
manifests of those days, never more, so its cost does not grow with the history. It reads what
is stored when it runs (no ingested_at cut): a late event or manifest counts from the next
evaluation on, which is how a filled gap resolves its alert.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from core.feeds.alerts import KINDS, OpenFeedAlert, transitions
from core.feeds.judge import (
    Feed,
    FeedRule,
    ManifestJudgement,
    VolumeJudgement,
    judge_manifests,
    judge_volume,
    judged_day,
    window,
)
from core.plans.alert_model import Transition
from core.plans.monitor import Publish, record_transition
from core.reference.calendar import WorkingCalendar
from core.zone import VN

_DT = "DateTime64(3, 'UTC')"
_AGENCIES = "(empty({agencies:Array(String)}) OR has({agencies:Array(String)}, agency_code))"

# Dossiers received per feed and local day. A receipt is never recorded before the dossier is
# received, so occurred_at >= the window's start (a day of slack for a skewed clock) holds for
# every row wanted and lets the engine skip the years before (events is partitioned by them).
VOLUMES_SQL = f"""
SELECT source, agency_code, toDate(received_at, 'Asia/Ho_Chi_Minh') AS day,
       uniqExact(entity_id) AS dossiers
FROM events
WHERE entity = 'dossier' AND type = 'dossier.received'
  AND occurred_at >= {{start:{_DT}}} - INTERVAL 1 DAY
  AND received_at >= {{start:{_DT}}} AND received_at < {{end:{_DT}}}
  AND {_AGENCIES}
GROUP BY source, agency_code, day
"""

# The days each feed sent a manifest for: whether one exists, not which version wins.
MANIFEST_DAYS_SQL = f"""
SELECT source, agency_code, groupUniqArray(day)
FROM manifests
WHERE day >= {{first:Date}} AND day <= {{last:Date}} AND {_AGENCIES}
GROUP BY source, agency_code
"""

OPEN_SQL = (
    "SELECT alert_id, last_seq, state, status, kind, agency_code, period_start, evidence "
    "FROM alerts_current WHERE kind IN {kinds:Array(String)}"
)


@dataclass
class FeedRun:
    day: date  # the working day judged
    volumes: list[VolumeJudgement]
    manifests: list[ManifestJudgement]
    transitions: list[Transition]
    seconds: float


class FeedMonitor:
    def __init__(
        self,
        client: Client,
        rule: FeedRule | None = None,
        *,
        publish: Publish | None = None,
        calendar: WorkingCalendar | None = None,
        agencies: Collection[str] = (),
    ) -> None:
        self._client = client
        self.rule = rule or FeedRule()
        self._publish = publish
        self._calendar = calendar or WorkingCalendar.load()
        # Only these agencies' feeds (empty: every agency's).
        self._agencies = sorted(agencies)
        self._open: dict[str, OpenFeedAlert] | None = None

    @property
    def firing(self) -> int:
        """Feed alerts firing now, as far as this monitor knows (0 before its first step)."""
        return sum(a.state == "firing" for a in (self._open or {}).values())

    async def step(self, now: datetime) -> FeedRun:
        """Judge the latest working day passed at `now`; publish and store what changed."""
        started = time.perf_counter()
        day = judged_day(now, self.rule, self._calendar)
        days = window(day, self.rule, self._calendar)
        volumes, manifests = await asyncio.to_thread(self._judge, days)
        if self._open is None:
            # Read back once, so a restart neither fires an open alert again nor forgets one.
            self._open = await asyncio.to_thread(load_open_feed_alerts, self._client)
        changes = transitions(volumes, manifests, self._open, now, self.rule)
        for change in changes:
            await record_transition(self._client, self._publish, change)
            self._open[change.alert_id] = OpenFeedAlert.of(change)
        return FeedRun(day, volumes, manifests, changes, time.perf_counter() - started)

    def _judge(self, days: list[date]) -> tuple[list[VolumeJudgement], list[ManifestJudgement]]:
        by_feed = self._volumes(days[0], days[-1])
        sent = self._manifest_days(days[0], days[-1])
        return (
            [judge_volume(f, days, by_day, self.rule) for f, by_day in sorted(by_feed.items())],
            [judge_manifests(f, days, on) for f, on in sorted(sent.items())],
        )

    def _volumes(self, first: date, last: date) -> dict[Feed, dict[date, int]]:
        params: dict[str, Any] = {
            "start": _local_midnight(first),
            "end": _local_midnight(last + timedelta(days=1)),
            "agencies": self._agencies,
        }
        out: dict[Feed, dict[date, int]] = defaultdict(dict)
        for source, agency, day, dossiers in self._client.query(
            VOLUMES_SQL, parameters=params
        ).result_rows:
            out[(source, agency)][day] = int(dossiers)
        return out

    def _manifest_days(self, first: date, last: date) -> dict[Feed, set[date]]:
        params = {"first": first, "last": last, "agencies": self._agencies}
        rows = self._client.query(MANIFEST_DAYS_SQL, parameters=params).result_rows
        return {(source, agency): set(days) for source, agency, days in rows}


def load_open_feed_alerts(client: Client) -> dict[str, OpenFeedAlert]:
    rows = client.query(OPEN_SQL, parameters={"kinds": list(KINDS)}).result_rows
    return {str(r[0]): OpenFeedAlert.from_row(r) for r in rows}


def _local_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=VN).astimezone(UTC)
