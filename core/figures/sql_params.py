"""The parameters every figure's SQL reads: the working-day calendar as two tables of numbers
(and the SQL that looks a working day up in them), the rule set's parameters, and those of a
whole-scope figure; `used` keeps only the parameters a query reads."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from core.figures.periods import FIRST_DAY, Period
from core.figures.rules import RuleSet
from core.reference.calendar import WorkingCalendar

# Working days of the loaded calendar years as data, two tables of fixed-width numbers in string
# parameters (_calendar_params), read per row with a substring: `cal_running`, entry i the number
# of working days among the calendar's first i days (entry 0 is 0), and `cal_wd`, entry k the
# position (1-based, from cal_base) of the k-th working day (entry 0 unused). So the first working
# day on or after d is one lookup, never a scan per row, and a day past the calendar yields NULL,
# never a guess. Not arrays: an array parameter of 2,000 dates cost ~4 ms to parse per use, and
# arrays built from a string of day flags by lambdas were folded again for every use of a column
# that read them (the feedback figure planned in 28 ms with them, in 16 without any calendar).
_WIDTH = 5  # digits per entry: 99,999 days


def _entry(table: str, index: str) -> str:
    """Entry `index` (0-based) of one of the calendar's tables; 0 past its end."""
    return f"toUInt32OrZero(substring({{{table}:String}}, {_WIDTH} * ({index}) + 1, {_WIDTH}))"


def first_index(day: str) -> str:
    """1-based index in the working days of the first working day on or after `day`; 0: none."""
    offset = f"dateDiff('day', {{cal_base:Date}}, {day})"
    return (
        f"multiIf({day} < {{cal_base:Date}}, 1, "
        f"{day} > addDays({{cal_base:Date}}, {{cal_days:UInt32}} - 1), 0, "
        f"{_entry('cal_running', offset)} + 1)"
    )


def working_day(day: str, first: str, offset: str) -> str:
    """The working day `offset` places after the one at index `first` (a first_index column of
    `day`); NULL when the calendar does not reach that far or `day` is NULL."""
    return (
        f"if({day} IS NULL OR {first} = 0 OR {first} + ({offset}) NOT BETWEEN 1 "
        "AND {cal_working:UInt32}, NULL, "
        f"addDays({{cal_base:Date}}, {_entry('cal_wd', f'{first} + ({offset})')} - 1))"
    )


@cache
def calendar() -> WorkingCalendar:
    """The shipped working-day calendar (core/reference/data/calendar)."""
    return WorkingCalendar.load()


@cache
def _calendar_params() -> dict[str, Any]:
    cal = calendar()
    days = [d for year in cal.years for d in cal.days(year)]
    working = [d.day for d in days if d.is_working]
    if not working:
        return {"cal_base": FIRST_DAY, "cal_days": 0, "cal_working": 0, "cal_running": "",
                "cal_wd": ""}  # fmt: skip
    flags = [d.is_working for d in days if d.day <= working[-1]]
    running = [0]
    for flag in flags:
        running.append(running[-1] + flag)
    positions = [0] + [i + 1 for i, flag in enumerate(flags) if flag]

    def table(numbers: list[int]) -> str:
        assert max(numbers) < 10**_WIDTH
        return "".join(f"{n:0{_WIDTH}d}" for n in numbers)

    return {
        "cal_base": days[0].day,
        "cal_days": len(flags),
        "cal_working": len(positions) - 1,
        "cal_running": table(running),
        "cal_wd": table(positions),
    }


def rule_params(rule_set: RuleSet) -> dict[str, Any]:
    """Every parameter the figure SQL reads from the rules and the calendar."""
    return {**rule_set.sql_params(), **_calendar_params()}


def used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters `sql` reads. Every parameter sent costs the engine its parsing, used or
    not: the calendar's tables (18 KB) cost ~2 ms on every query, a `SELECT 1` included."""
    return {k: v for k, v in params.items() if f"{{{k}:" in sql}


def scope_params(
    period: Period,
    now: datetime,
    agencies: tuple[str, ...],
    as_of: datetime | None,
    rule_set: RuleSet,
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause and parameters shared by whole-scope figures (reports, the index)."""
    params: dict[str, Any] = {
        "period_start": period.start,
        "period_end": period.end,
        "judged_at": min(period.end, now),
        **rule_params(rule_set),
    }
    where = "1"
    if agencies:
        where = "agency_code IN {agencies:Array(String)}"
        params["agencies"] = list(agencies)
    if as_of is not None:
        params["as_of"] = as_of
    return where, params
