"""The working-day calendar in ClickHouse: `calendar_days` kept in step with the year files, and
an SQL expression that counts working days from it."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from core.reference.calendar import WorkingCalendar

TABLE = "calendar_days"
COLUMNS = ["day", "is_working", "kind", "name", "calendar_version"]


def calendar_rows(calendar: WorkingCalendar) -> list[list[Any]]:
    """One row per day of every loaded year, in `COLUMNS` order."""
    return [
        [d.day, int(d.is_working), d.kind, d.name, calendar.year_version(year)]
        for year in calendar.years
        for d in calendar.days(year)
    ]


def sync_calendar(client: Client, calendar: WorkingCalendar) -> int:
    """Write the days whose stored row is missing or differs (normally because their year file's
    version changed); returns how many were written. Running it again writes nothing. A rewritten
    day replaces the stored one (ReplacingMergeTree by day)."""
    rows = calendar_rows(calendar)
    stored = client.query(
        f"SELECT {', '.join(COLUMNS)} FROM {TABLE} FINAL "
        "WHERE day BETWEEN {first:Date} AND {last:Date}",
        parameters={"first": rows[0][0], "last": rows[-1][0]},
    ).result_rows
    known = {tuple(r) for r in stored}
    changed = [r for r in rows if tuple(r) not in known]
    if changed:
        client.insert(TABLE, changed, column_names=COLUMNS)
    return len(changed)


# Evaluated once per query, not per row: (first day, last day, day count, cumulative working days
# with a leading 0), so C(d) = working days in [first, d] = cum[dateDiff(first, d) + 2].
_CALENDAR = (
    "(SELECT tuple(min(day), max(day), count(), arrayConcat([0], arrayCumSum(arrayMap("
    "t -> toUInt32(t.2), arraySort(groupArray((day, is_working))))))) "
    f"FROM {TABLE} FINAL)"
)


def working_days_between_sql(a_expr: str, b_expr: str) -> str:
    """An SQL expression for the working days in (a, b], negative if b < a, as in
    WorkingCalendar.working_days_between; NULL when a day in between is missing from
    calendar_days (an unloaded year), never a silent Monday-Friday guess.

    `a_expr` and `b_expr` must be Date expressions in local time, e.g.
    toDate(filed_at, 'Asia/Ho_Chi_Minh'): a DateTime would be cut to its UTC date. They are SQL
    text: pass column names or parameter placeholders, never user input.
    """
    a, b = f"({a_expr})", f"({b_expr})"
    lo, hi = f"least({a}, {b})", f"greatest({a}, {b})"
    first, last = f"tupleElement({_CALENDAR}, 1)", f"tupleElement({_CALENDAR}, 2)"
    count, cum = f"tupleElement({_CALENDAR}, 3)", f"tupleElement({_CALENDAR}, 4)"

    def upto(d: str) -> str:
        return f"toInt64(arrayElement({cum}, dateDiff('day', {first}, {d}) + 2))"

    no_gaps = f"dateDiff('day', {first}, {last}) + 1 = {count}"
    covered = f"dateDiff('day', {first}, {lo}) >= -1 AND {hi} <= {last}"
    signed = f"if({b} < {a}, -1, 1) * ({upto(hi)} - {upto(lo)})"
    return f"multiIf({a} = {b}, toInt64(0), ({no_gaps}) AND ({covered}), {signed}, NULL)"
