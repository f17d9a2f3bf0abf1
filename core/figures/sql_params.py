"""The parameters every figure's SQL reads: the working-day calendar as two tables of numbers
(and the SQL that looks a working day up in them), the rule set's parameters, and those of a
whole-scope figure; `used` keeps only the parameters a query reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
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


@dataclass(frozen=True)
class _Tables:
    """The calendar's two tables as numbers (see _WIDTH above); `days` the days they cover."""

    base: date
    days: int
    running: list[int]
    positions: list[int]

    def first_index(self, day: date) -> int:
        """first_index() in Python: the same answer for the same day."""
        if day < self.base:
            return 1
        if day > self.base + timedelta(days=self.days - 1):
            return 0
        return self.running[(day - self.base).days] + 1

    def working_day(self, first: int, offset: int) -> date | None:
        """working_day() in Python, for a day whose first_index is `first`."""
        if first == 0 or not 1 <= first + offset <= len(self.positions) - 1:
            return None
        return self.base + timedelta(days=self.positions[first + offset] - 1)


@cache
def _tables() -> _Tables:
    cal = calendar()
    days = [d for year in cal.years for d in cal.days(year)]
    working = [d.day for d in days if d.is_working]
    if not working:
        return _Tables(FIRST_DAY, 0, [0], [0])
    flags = [d.is_working for d in days if d.day <= working[-1]]
    running = [0]
    for flag in flags:
        running.append(running[-1] + flag)
    positions = [0] + [i + 1 for i, flag in enumerate(flags) if flag]
    return _Tables(days[0].day, len(flags), running, positions)


@cache
def _calendar_params() -> dict[str, Any]:
    tables = _tables()

    def table(numbers: list[int]) -> str:
        assert max(numbers) < 10**_WIDTH
        return "".join(f"{n:0{_WIDTH}d}" for n in numbers)

    return {
        "cal_base": tables.base,
        "cal_days": tables.days,
        "cal_working": len(tables.positions) - 1,
        "cal_running": table(tables.running) if tables.days else "",
        "cal_wd": table(tables.positions) if tables.days else "",
    }


# The answer deadline of feedback filed on a day (reference §5: the N-th working day after it),
# looked up by the filing day in an array of the period's days. A feedback figure counts only
# what was filed in its period, so those days are all it looks up; one lookup in a short array
# is what the engine plans fastest, and the two calendar lookups it replaces were a third of a
# feedback statement's time (65 against 35 ms, a year by agency, 1M dossiers). Days before the
# array's first read its first entry: it starts on the period's first day, or on the day before
# the calendar's when the period begins earlier (every earlier day has that day's deadline).
# Days after its last read NULL: it ends on the period's last day, or where the calendar ends
# (no deadline past it, as working_day()).
FILED_DEADLINE = (
    "{filed_deadlines:Array(Nullable(Date))}"
    "[toUInt32(greatest(dateDiff('day', {filed_first_day:Date}, filed_day), 0)) + 1]"
)


@lru_cache(maxsize=8)
def _deadlines(working_days: int) -> tuple[date | None, ...]:
    """The deadline of feedback filed on each day from the day before the calendar's first to
    its last, computed once per rule: a question slices its period out of it (a Python loop
    over a year's days on every question cost ~1 ms, over the whole calendar ~9)."""
    tables = _tables()
    origin = tables.base - timedelta(days=1)
    return tuple(
        tables.working_day(tables.first_index(origin + timedelta(days=i + 1)), working_days - 1)
        for i in range(tables.days + 1)
    )


def filed_deadlines(period: Period, working_days: int) -> dict[str, Any]:
    """The parameters FILED_DEADLINE reads for feedback filed in `period`."""
    tables = _tables()
    origin = tables.base - timedelta(days=1)
    first = max(period.first_day, origin)
    last = min(period.last_day, tables.base + timedelta(days=tables.days - 1))
    if period.last_day < origin:  # the whole period before the calendar: origin's deadline
        first = last = origin
    start = (first - origin).days
    deadlines = list(_deadlines(working_days)[start : max(start, (last - origin).days + 1)])
    return {"filed_first_day": first, "filed_deadlines": deadlines}


def rule_params(rule_set: RuleSet, period: Period) -> dict[str, Any]:
    """Every parameter the figure SQL of `period` reads from the rules and the calendar."""
    rule = rule_set.sql_params()
    deadlines = filed_deadlines(period, rule["feedback_working_days"])
    return {**rule, **_calendar_params(), **deadlines}


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
        **rule_params(rule_set, period),
    }
    where = "1"
    if agencies:
        where = "agency_code IN {agencies:Array(String)}"
        params["agencies"] = list(agencies)
    if as_of is not None:
        params["as_of"] = as_of
    return where, params
