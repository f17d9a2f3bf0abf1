"""The auditors' reconciliation report (GET /v1/reconciliation): the latest judgment of each
agency-day as of an instant (core/figures/completeness.py latest_sql), narrowed to agencies and
statuses, as typed rows and totals over all of them. The SQL is kept here, below the route."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from clickhouse_connect.driver.client import Client

from core.figures.completeness import LATEST_COLUMNS, STATUS_LABELS, latest_sql
from core.zone import utc

# Summed over the rows in the totals, in this order; open at day end is a stock and is not summed.
SUMMED: tuple[str, ...] = (
    "reported_received",
    "stored_received",
    "held_received",
    "missing",
    "extra",
    "reported_finished",
    "stored_finished",
    "reported_feedback_filed",
    "stored_feedback_filed",
    "reported_feedback_answered",
    "stored_feedback_answered",
)


class AuditDay(NamedTuple):
    """The latest judgment of one agency-day (instants as stored: naive UTC)."""

    agency_code: str
    day: date
    source: str
    manifest_at: datetime
    has_ids: bool
    reported_received: int
    stored_received: int
    held_received: int
    missing: int
    extra: int
    reported_finished: int
    stored_finished: int
    reported_open: int | None
    stored_open: int | None
    reported_feedback_filed: int
    stored_feedback_filed: int
    reported_feedback_answered: int
    stored_feedback_answered: int
    status: str
    judged_at: datetime


assert AuditDay._fields == LATEST_COLUMNS, "latest_sql's columns"


@dataclass(frozen=True, slots=True)
class AuditQuestion:
    """The agency-days of [first, last] (of `agencies`; () for all) whose latest judgment made by
    `at` has one of `statuses`."""

    agencies: tuple[str, ...]
    first: date
    last: date
    at: datetime
    statuses: tuple[str, ...]

    def sql(self) -> tuple[str, dict[str, Any]]:
        """The latest judgments it covers, as a subquery, and the parameters of it and of the
        status condition."""
        params: dict[str, Any] = {
            "first_day": self.first,
            "last_day": self.last,
            "at": self.at,
            "statuses": list(self.statuses),
        }
        if not self.agencies:
            return latest_sql(), params
        params["agencies"] = list(self.agencies)
        return latest_sql("agency_code IN {agencies:Array(String)}"), params


_STATUS_WHERE = "status IN {statuses:Array(String)}"


@dataclass(frozen=True, slots=True)
class AuditTotals:
    days: int
    summed: dict[str, int]  # SUMMED's columns, in that order
    by_status: dict[str, int]  # every status of STATUS_LABELS, in that order
    last_judged: datetime | None  # the newest judgment (UTC)


def audit_totals(client: Client, question: AuditQuestion) -> AuditTotals:
    """Totals over every agency-day the question covers, and its newest judgment."""
    latest, params = question.sql()
    by_status = ", ".join(f"countIf(status = '{s}')" for s in STATUS_LABELS)  # code constants
    sums = ", ".join(f"toInt64(sum({c}))" for c in SUMMED)
    sql = (
        f"SELECT toInt64(count()), {sums}, {by_status}, maxOrNull(judged_at) "
        f"FROM ({latest}) WHERE {_STATUS_WHERE}"
    )
    days, *rest = client.query(sql, parameters=params).result_rows[0]
    summed = dict(zip(SUMMED, (int(v) for v in rest[: len(SUMMED)]), strict=True))
    counts = rest[len(SUMMED) : len(SUMMED) + len(STATUS_LABELS)]
    by_status_counts = {s: int(n) for s, n in zip(STATUS_LABELS, counts, strict=True)}
    return AuditTotals(int(days), summed, by_status_counts, utc(rest[-1]))


def audit_days(client: Client, question: AuditQuestion, limit: int, offset: int) -> list[AuditDay]:
    """The agency-days the question covers, by agency then day, `limit` of them from `offset`."""
    latest, params = question.sql()
    rows = client.query(
        f"SELECT {', '.join(LATEST_COLUMNS)} FROM ({latest}) WHERE {_STATUS_WHERE} "
        "ORDER BY agency_code, day LIMIT {limit:UInt64} OFFSET {offset:UInt64}",
        parameters={**params, "limit": limit, "offset": offset},
    ).result_rows
    return [AuditDay(*r) for r in rows]
