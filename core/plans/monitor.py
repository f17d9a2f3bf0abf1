"""The plan monitor: evaluates every plan, records the status history, and publishes and stores
alert transitions. Runs inside the metrics service (services/metrics/service.py).

Order of an alert transition: publish to NATS (Nats-Msg-Id "<alert_id>#<seq>"), then insert into
`alerts`. A failed publish inserts nothing and is retried at the next evaluation with the same
seq; a failed insert after a publish is retried the same way, and JetStream drops the repeated
publish as a duplicate, so subscribers see each transition once and the table holds it once
(ReplacingMergeTree on (alert_id, seq)).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from clickhouse_connect.driver.client import Client

from core.plans.alert_model import ALERT_COLUMNS, OpenAlert, Transition
from core.plans.alerts import transitions, withdrawn
from core.plans.evaluator import Evaluator
from core.plans.forecast import Policy
from core.plans.model import Plan
from core.plans.status import STATUS_COLUMNS, TargetStatus

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, str], Awaitable[None]]  # subject, body, Nats-Msg-Id


@dataclass
class MonitorRun:
    statuses: list[TargetStatus]
    transitions: list[Transition]
    rows_written: int
    seconds: float


class PlanMonitor:
    def __init__(
        self,
        client: Client,
        plans: Mapping[str, Plan],
        *,
        publish: Publish | None = None,
        policy: Policy | None = None,
        full_every: float = 3600.0,
        folded_only: bool = False,
    ) -> None:
        self._client = client
        self._evaluator = Evaluator(
            client, plans, policy=policy or Policy(), folded_only=folded_only
        )
        self._publish = publish
        self._full_every = full_every
        self._last_full = -float("inf")
        self._written: dict[tuple[str, str, str, date], tuple[object, ...]] = {}
        self._open: dict[str, OpenAlert] | None = None

    @property
    def plans(self) -> Mapping[str, Plan]:
        return self._evaluator.plans

    async def step(self, now: datetime) -> MonitorRun:
        """Evaluate at `now`, store what changed, publish and store alert transitions."""
        started = time.perf_counter()
        statuses = await asyncio.to_thread(self._evaluator.evaluate, now)
        written = await asyncio.to_thread(self._record, statuses, now)
        if self._open is None:
            self._open = await asyncio.to_thread(load_open_alerts, self._client)
        in_force = {(p.key, t.id) for p in self.plans.values() for t in p.targets}
        changes = transitions(statuses, self._open, now) + withdrawn(self._open, in_force, now)
        for change in changes:
            await record_transition(self._client, self._publish, change)
            self._open[change.alert_id] = change.as_open()
        return MonitorRun(statuses, changes, written, time.perf_counter() - started)

    def _record(self, statuses: list[TargetStatus], now: datetime) -> int:
        full = time.monotonic() - self._last_full >= self._full_every
        rows = []
        seen: dict[tuple[str, str, str, date], tuple[object, ...]] = {}
        for s in statuses:
            e = s.evaluation
            fingerprint = (e.status, e.numerator, e.denominator, e.pending, e.budget, e.needed)
            if full or self._written.get(s.key) != fingerprint:
                rows.append(s.row(now))
            seen[s.key] = fingerprint
        if rows:
            self._client.insert("target_status", rows, column_names=list(STATUS_COLUMNS))
        # Only after the insert: a failed one is written again at the next evaluation.
        self._written.update(seen)
        if full:
            self._last_full = time.monotonic()
        return len(rows)


async def record_transition(client: Client, publish: Publish | None, change: Transition) -> None:
    """Publish one transition, then store it (the order the module docstring explains). Shared
    with the feed monitor (services/metrics/feeds), whose alerts go the same way."""
    if publish is not None:
        await publish(change.subject, change.message(), change.msg_id)
    await asyncio.to_thread(
        client.insert, "alerts", [change.row()], column_names=list(ALERT_COLUMNS)
    )


def load_open_alerts(client: Client) -> dict[str, OpenAlert]:
    """The latest transition of every alert, so a restart neither re-fires nor forgets one."""
    rows = client.query(
        "SELECT alert_id, last_seq, state, status, plan, target_id, agency_code, period_start, "
        "kind FROM alerts_current"
    ).result_rows
    return {
        r[0]: OpenAlert(r[0], int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows
    }
