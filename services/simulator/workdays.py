"""Office calendar of the one-stop desks: working days, 7:30-11:30 and 13:30-17:00, in +07:00.

Due dates count working days on the official calendar (services/reference/data/calendar), as the
source systems do, so simulated deadlines skip Tết and the other public holidays; beyond the
calendar's years it falls back to Monday-Friday. Desk opening times only skip weekends.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from functools import cache

from services.reference.calendar import CalendarRangeError, WorkingCalendar

ICT = timezone(timedelta(hours=7))
MINUTE = timedelta(minutes=1)
_SESSIONS = ((time(7, 30), time(11, 30)), (time(13, 30), time(17, 0)))


@cache
def _calendar() -> WorkingCalendar:
    return WorkingCalendar.load()


@cache
def is_working_day(day: date) -> bool:
    try:
        return _calendar().is_working_day(day)
    except CalendarRangeError:
        return day.weekday() < 5


def add_working_days(t: datetime, days: int) -> datetime:
    """The same clock time `days` working days later (earlier when negative)."""
    step = timedelta(days=1 if days >= 0 else -1)
    remaining = abs(days)
    while remaining:
        t += step
        if is_working_day(t.date()):
            remaining -= 1
    return t


def next_open(t: datetime) -> datetime:
    """t when the one-stop desk is open then, else its next opening."""
    while True:
        if t.weekday() < 5:
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
        if day.weekday() < 5:
            t = office_time(rng, day)
            if lo <= t < hi:
                return t
    # A short window, or one mostly outside opening hours.
    t = lo + timedelta(seconds=int(rng.random() * span))
    opened = next_open(t)
    return opened if opened < hi else t
