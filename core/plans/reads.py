"""What the API and the public page read of the stored plan evaluations (`target_status`, written by
core/plans/status.py) and of the alerts raised from them (`alerts`, core/plans/alerts.py): typed
rows, the SQL kept here, below the routes and the page.

An evaluation is never updated in place: a new row is written when anything changes, so the
current status is the row with the latest `evaluated_at` (argMax), read as one tuple so that a
NULL value cannot make argMax pick its field from another row. One query answers both the targets'
routes and the page (latest_statuses).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from clickhouse_connect.driver.client import Client

from core.plans.status import STATUS_COLUMNS

# Every stored column but the key, then when it was evaluated (the argMax tuple's order).
_KEY = ("evaluated_at", "plan", "target_id", "agency_code", "period_start")
_FIELDS = (*(c for c in STATUS_COLUMNS if c not in _KEY), "evaluated_at")

_LATEST = f"""
SELECT plan, target_id, agency_code, period_start,
       argMax(tuple({", ".join(_FIELDS)}), evaluated_at) AS s
FROM target_status
WHERE ({{plan:Nullable(String)}} IS NULL OR plan = {{plan:Nullable(String)}})
  AND ({{target:Nullable(String)}} IS NULL OR target_id = {{target:Nullable(String)}})
  AND (empty({{agencies:Array(String)}}) OR has({{agencies:Array(String)}}, agency_code))
  AND ({{first:Nullable(Date32)}} IS NULL OR period_end >= {{first:Nullable(Date32)}})
  AND ({{last:Nullable(Date32)}} IS NULL OR period_start <= {{last:Nullable(Date32)}})
GROUP BY plan, target_id, agency_code, period_start
ORDER BY plan, target_id, period_start, agency_code
"""


@dataclass(frozen=True, slots=True)
class LatestStatus:
    """The latest evaluation of one (plan, target, agency, period): every stored column."""

    plan: str  # id@version
    target_id: str
    agency_code: str  # '' = the target's scope as a whole
    period_start: date
    period_end: date
    metric: str
    comparator: str
    threshold: float
    numerator: int
    denominator: int
    pending: int  # items in the denominator not decided yet (feedback within its deadline)
    value: float | None
    status: str
    forecast: float | None
    forecast_low: float | None
    forecast_high: float | None
    expected_denominator: float | None
    forecast_method: str
    budget: int | None
    needed: int | None
    needed_per_working_day: float | None
    remaining_working_days: int
    burn_rates: dict[str, float]
    data_watermark: datetime  # as stored: naive UTC
    evaluated_at: datetime  # as stored: naive UTC


assert tuple(f.name for f in dataclasses.fields(LatestStatus))[4:] == _FIELDS, "target_status"


def latest_statuses(
    client: Client,
    *,
    plan: str | None = None,
    target: str | None = None,
    agencies: tuple[str, ...] = (),
    first: date | None = None,
    last: date | None = None,
) -> list[LatestStatus]:
    """The current status of every (plan, target, agency, period), narrowed to a plan, a target,
    some agencies (none: all, the scope rows included) and periods overlapping [first, last]."""
    rows = client.query(
        _LATEST,
        parameters={
            "plan": plan,
            "target": target,
            "agencies": list(agencies),
            "first": first,
            "last": last,
        },
    ).result_rows
    return [
        LatestStatus(plan_key, target_id, agency, period_start, *values)
        for plan_key, target_id, agency, period_start, values in rows
    ]


class StatusChange(NamedTuple):
    """One stored evaluation of a target, as its history lists it (naive UTC instants)."""

    evaluated_at: datetime
    agency_code: str
    period_start: date
    status: str
    value: float | None
    numerator: int
    denominator: int
    forecast: float | None
    forecast_low: float | None
    forecast_high: float | None
    budget: int | None
    needed: int | None
    burn_rates: dict[str, float]


_HISTORY = (
    f"SELECT {', '.join(StatusChange._fields)} "
    "FROM target_status WHERE plan = {plan:String} AND target_id = {target:String} "
    "AND (empty({agencies:Array(String)}) OR has({agencies:Array(String)}, agency_code)) "
    "AND evaluated_at >= {from:DateTime64(3, 'UTC')} "
    "AND evaluated_at <= {to:DateTime64(3, 'UTC')} "
    "ORDER BY evaluated_at, agency_code LIMIT {limit:UInt32}"
)


def status_history(
    client: Client,
    plan: str,
    target: str,
    agencies: tuple[str, ...],
    since: datetime,
    until: datetime,
    limit: int,
) -> list[StatusChange]:
    """Every evaluation of the target in [since, until], oldest first, at most `limit`."""
    rows = client.query(
        _HISTORY,
        parameters={
            "plan": plan,
            "target": target,
            "agencies": list(agencies),
            "from": since,
            "to": until,
            "limit": limit,
        },
    ).result_rows
    return [StatusChange(*r) for r in rows]


class AlertTransition(NamedTuple):
    """One transition of an alert (naive UTC instants; evidence: JSON text)."""

    alert_id: str
    seq: int
    state: str
    at: datetime
    kind: str
    severity: str
    plan: str
    target_id: str
    agency_code: str
    period_start: date
    status: str
    previous_status: str
    summary: str
    evidence: str


class AlertNow(NamedTuple):
    """An alert as its latest transition left it, with when it first fired."""

    alert_id: str
    seq: int
    state: str
    at: datetime
    first_at: datetime
    kind: str
    severity: str
    plan: str
    target_id: str
    agency_code: str
    period_start: date
    status: str
    summary: str
    evidence: str


_ALERTS_WHERE = (
    "({state:Nullable(String)} IS NULL OR state = {state:Nullable(String)}) "
    "AND (empty({agencies:Array(String)}) OR has({agencies:Array(String)}, agency_code)) "
    "AND ({plan:Nullable(String)} IS NULL OR plan = {plan:Nullable(String)})"
)
_TRANSITIONS = (
    "SELECT alert_id, seq, state, at, kind, severity, plan, target_id, agency_code, "
    "period_start, status, previous_status, summary, evidence "
    f"FROM alerts FINAL WHERE {_ALERTS_WHERE} "
    "ORDER BY at DESC, alert_id, seq DESC LIMIT {limit:UInt32}"
)
_CURRENT = (
    "SELECT alert_id, last_seq AS seq, state, changed_at AS at, first_at, kind, severity, "
    "plan, target_id, agency_code, period_start, status, summary, evidence "
    f"FROM alerts_current WHERE {_ALERTS_WHERE} ORDER BY changed_at DESC, alert_id "
    "LIMIT {limit:UInt32}"
)


def _alert_params(
    state: str | None, agencies: tuple[str, ...], plan: str | None, limit: int
) -> dict[str, Any]:
    return {"state": state, "agencies": list(agencies), "plan": plan, "limit": limit}


def alert_transitions(
    client: Client, state: str | None, agencies: tuple[str, ...], plan: str | None, limit: int
) -> list[AlertTransition]:
    """Every transition, newest first; `state` None: firing and resolved."""
    params = _alert_params(state, agencies, plan, limit)
    return [AlertTransition(*r) for r in client.query(_TRANSITIONS, parameters=params).result_rows]


def current_alerts(
    client: Client, state: str | None, agencies: tuple[str, ...], plan: str | None, limit: int
) -> list[AlertNow]:
    """Each alert's latest state, the most recently changed first."""
    params = _alert_params(state, agencies, plan, limit)
    return [AlertNow(*r) for r in client.query(_CURRENT, parameters=params).result_rows]


_KNOWN = (
    "SELECT (SELECT count() FROM agencies WHERE agency_code = {c:String}) "
    "+ (SELECT count() FROM (SELECT 1 FROM dossier_parts WHERE agency_code = {c:String} "
    "LIMIT 1)) + (SELECT count() FROM (SELECT 1 FROM feedback_parts "
    "WHERE agency_code = {c:String} LIMIT 1)) + (SELECT count() FROM (SELECT 1 "
    "FROM target_status WHERE agency_code = {c:String} AND period_start <= {last:Date} "
    "AND period_end >= {first:Date} LIMIT 1))"
)


def agency_known(client: Client, code: str, first: date, last: date) -> bool:
    """Whether the reference data knows the agency code, or it has dossiers, feedback or target
    statuses over [first, last] (an integrator's own code still counts its own). Lookups by each
    table's key, a few ms: the public page answers a made-up code without building a page."""
    rows = client.query(_KNOWN, parameters={"c": code, "first": first, "last": last}).result_rows
    return bool(rows[0][0])
