"""Office calendar of the one-stop desks: working days, 7:30-11:30 and 13:30-17:00, in +07:00.

Working days are the official calendar's (core/reference/data/calendar: Mondays-Fridays less
public holidays such as Tết, plus make-up Saturdays), as the source systems count due dates and
the metrics judge them. Dates beyond the calendar's years fall back to Monday-Friday, with one
warning: a simulator run far in the future must not crash.
"""

from __future__ import annotations

import logging
import random
from datetime import date, datetime, time, timedelta, timezone
from functools import cache

from core.reference.calendar import CalendarRangeError, DayKind, WorkingCalendar

log = logging.getLogger(__name__)

ICT = timezone(timedelta(hours=7))
MINUTE = timedelta(minutes=1)
_SESSIONS = ((time(7, 30), time(11, 30)), (time(13, 30), time(17, 0)))
_END_OF_DAY = time(23, 59, 59, 999_000)  # as WorkingCalendar.working_day_deadline
_warned = False


@cache
def _calendar() -> WorkingCalendar:
    return WorkingCalendar.load()


def _beyond_calendar(error: CalendarRangeError) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("simulator: counting Monday-Friday as working days where %s", error)


@cache
def day_kind(day: date) -> DayKind:
    """What the calendar says `day` is; by weekday beyond its years."""
    try:
        return _calendar().day(day).kind
    except CalendarRangeError as error:
        _beyond_calendar(error)
        return "workday" if day.weekday() < 5 else "weekend"


def is_working_day(day: date) -> bool:
    return day_kind(day) in ("workday", "makeup_workday")


def add_working_days(t: datetime, days: int) -> datetime:
    """The same clock time `days` working days later (earlier when negative); `t` itself is never
    counted (BLDS 2015 Điều 147)."""
    return t if days == 0 else datetime.combine(_add_working_days(t.date(), days), t.timetz())


@cache  # few distinct (day, days) pairs, and the calendar's range checks are not free
def _add_working_days(day: date, days: int) -> date:
    try:
        return _calendar().add_working_days(day, days)
    except CalendarRangeError as error:
        _beyond_calendar(error)
    step, remaining = timedelta(days=1 if days > 0 else -1), abs(days)
    while remaining:
        day += step
        remaining -= is_working_day(day)
    return day


def working_day_deadline(t: datetime, days: int) -> datetime:
    """End of the `days`-th working day after t's date in +07:00, as the calendar's
    working_day_deadline (a feedback answer deadline)."""
    due = _add_working_days(t.astimezone(ICT).date(), days)
    return datetime.combine(due, _END_OF_DAY, ICT)


def next_open(t: datetime) -> datetime:
    """t when the one-stop desk is open then, else its next opening."""
    while True:
        if is_working_day(t.date()):
            for opens, closes in _SESSIONS:
                if t.time() < opens:
                    return datetime.combine(t.date(), opens, ICT)
                if t.time() < closes:
                    return t
        t = datetime.combine(t.date() + timedelta(days=1), time(), ICT)


def office_time(rng: random.Random, day: date) -> datetime:
    # rng.random() rather than randrange: this is the generator's hottest call.
    second = int(rng.random() * 450 * 60)  # 4 h of morning and 3.5 h of afternoon opening
    offset = 7.5 * 3600 if second < 240 * 60 else 13.5 * 3600 - 240 * 60
    return datetime.combine(day, time(), ICT) + timedelta(seconds=offset + second)


def office_between(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    """A time in [lo, hi), in opening hours when the window has any: uniform over its working days,
    so long windows do not pile up at Monday 7:30."""
    span = int((hi - lo).total_seconds())
    if span <= 0:
        return lo
    days = (hi.date() - lo.date()).days
    for _ in range(8):
        day = lo.date() + timedelta(days=int(rng.random() * (days + 1)))
        if is_working_day(day):
            t = office_time(rng, day)
            if lo <= t < hi:
                return t
    # A short window, or one mostly outside opening hours.
    t = lo + timedelta(seconds=int(rng.random() * span))
    opened = next_open(t)
    return opened if opened < hi else t
