"""The working-day calendar of Vietnamese public servants, read from one data file per year.

A working day is a Monday-Friday that is not a holiday, or a make-up working day (ngày làm bù,
a Saturday worked to bridge a holiday). Holidays follow the lunar calendar and yearly decisions,
so they are data (`data/calendar/vn-<year>.json`), never computed. A date outside the loaded years
raises `CalendarRangeError`: treating an unknown year as plain Monday-Friday would silently move
every deadline that crosses Tết.

Counting follows BLDS 2015 Điều 147: the day a period starts from is not counted, so "n working
days after d" is counted from the day after d.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from core.zone import TZ

DayKind = Literal["workday", "weekend", "holiday", "makeup_workday"]
LISTED_KINDS = ("holiday", "makeup_workday")
DEFAULT_TZ = TZ
CALENDAR = "vn"

_FILE = re.compile(r"^vn-(\d{4})\.json$")
_END_OF_DAY = time(23, 59, 59, 999_000)  # DateTime64(3): the last millisecond of the day
_DAY = timedelta(days=1)


class CalendarRangeError(LookupError):
    """A date the answer depends on lies outside the years the calendar was loaded with."""


class CalendarDataError(ValueError):
    """A year file is malformed or contradicts itself."""


@dataclass(frozen=True)
class CalendarDay:
    day: date
    kind: DayKind
    name: str
    source: str = ""

    @property
    def is_working(self) -> bool:
        return self.kind in ("workday", "makeup_workday")


@dataclass(frozen=True)
class YearFile:
    """One year's decided holidays and make-up days; every other date follows Monday-Friday."""

    year: int
    version: str
    provisional: bool
    listed: tuple[CalendarDay, ...]
    pending: tuple[tuple[date, str], ...] = ()  # announced but not yet in force: not applied

    @classmethod
    def parse(cls, payload: dict[str, Any], year: int) -> YearFile:
        if payload.get("calendar") != CALENDAR or payload.get("year") != year:
            raise CalendarDataError(f"vn-{year}.json: calendar/year fields do not match its name")
        version = str(payload.get("version", ""))
        if not version.startswith(f"{year}."):
            raise CalendarDataError(
                f"vn-{year}.json: version {version!r} must start with '{year}.'"
            )
        status = payload.get("status")
        if status not in ("decided", "provisional"):
            raise CalendarDataError(f"vn-{year}.json: status {status!r} is not decided|provisional")
        listed = tuple(_parse_day(raw, year) for raw in payload.get("days", []))
        dates = [d.day for d in listed]
        if len(set(dates)) != len(dates):
            raise CalendarDataError(f"vn-{year}.json: a date is listed twice")
        pending = tuple(
            (date.fromisoformat(p["date"]), str(p["name"])) for p in payload.get("pending", [])
        )
        return cls(year, version, status == "provisional", listed, pending)


def _parse_day(raw: dict[str, Any], year: int) -> CalendarDay:
    day = date.fromisoformat(raw["date"])
    kind, name = raw.get("kind"), str(raw.get("name", "")).strip()
    if day.year != year or kind not in LISTED_KINDS or not name:
        raise CalendarDataError(f"vn-{year}.json: bad entry {raw!r}")
    if kind == "makeup_workday" and day.weekday() < 5:
        raise CalendarDataError(f"vn-{year}.json: make-up day {day} is not a Saturday or Sunday")
    return CalendarDay(day, cast(DayKind, kind), name, str(raw.get("source", "")))


def available_years() -> list[int]:
    folder = resources.files("core.reference") / "data" / "calendar"
    return sorted(int(m[1]) for e in folder.iterdir() if (m := _FILE.match(e.name)))


def read_year(year: int) -> YearFile:
    entry = resources.files("core.reference") / "data" / "calendar" / f"vn-{year}.json"
    if not entry.is_file():
        raise CalendarRangeError(f"no working-day calendar for {year} (have {available_years()})")
    return YearFile.parse(json.loads(entry.read_text(encoding="utf-8")), year)


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days over the loaded years. `version` names every year file and its version,
    e.g. "vn:2022.1,2023.1"; a figure that used the calendar should carry it."""

    year_files: tuple[YearFile, ...]
    version: str = field(init=False)
    _listed: dict[date, CalendarDay] = field(init=False, repr=False, compare=False)
    _working: tuple[int, ...] = field(init=False, repr=False, compare=False)  # ordinals, sorted

    def __post_init__(self) -> None:
        years = [f.year for f in self.year_files]
        if not years or years != sorted(set(years)):
            raise CalendarDataError(f"year files must be distinct and sorted, got {years}")
        listed = {d.day: d for f in self.year_files for d in f.listed}
        object.__setattr__(self, "_listed", listed)
        object.__setattr__(
            self, "version", CALENDAR + ":" + ",".join(f.version for f in self.year_files)
        )
        working = tuple(
            d.day.toordinal() for f in self.year_files for d in self.days(f.year) if d.is_working
        )
        object.__setattr__(self, "_working", working)

    @classmethod
    def load(cls, years: Iterable[int] | None = None) -> WorkingCalendar:
        """The calendar of `years` (default: every year file shipped with the package)."""
        wanted = sorted(set(years)) if years is not None else available_years()
        return cls(tuple(read_year(y) for y in wanted))

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(f.year for f in self.year_files)

    @property
    def provisional_years(self) -> tuple[int, ...]:
        return tuple(f.year for f in self.year_files if f.provisional)

    def year_version(self, year: int) -> str:
        """The version of one year file, e.g. "vn:2025.1" (what calendar_days rows carry)."""
        for f in self.year_files:
            if f.year == year:
                return f"{CALENDAR}:{f.version}"
        raise CalendarRangeError(f"{year} is not loaded (loaded: {self.years})")

    def day(self, d: date) -> CalendarDay:
        """What `d` is: a listed holiday or make-up day, else a plain workday or weekend day."""
        self._require(d, d)
        if d in self._listed:
            return self._listed[d]
        return CalendarDay(d, "workday" if d.weekday() < 5 else "weekend", "")

    def days(self, year: int) -> Iterator[CalendarDay]:
        """Every day of a loaded year, in order."""
        d = date(year, 1, 1)
        while d.year == year:
            yield self.day(d)
            d += _DAY

    def is_working_day(self, d: date) -> bool:
        return self.day(d).is_working

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after `start`, `start` itself never counted (BLDS 2015 Điều 147).

        n >= 1: n = 1 is the first working day strictly after `start`, whatever `start` is.
        n == 0: `start` when it is a working day, else the next working day.
        n <= -1: the |n|-th working day strictly before `start`.
        For n >= 1, working_days_between(start, result) == n and the result is a working day.
        """
        if n == 0:
            return start if self.is_working_day(start) else self.add_working_days(start, 1)
        w = self._working
        i = (
            bisect_right(w, start.toordinal()) + n - 1
            if n > 0
            else bisect_left(w, start.toordinal()) + n
        )
        if not 0 <= i < len(w):
            raise CalendarRangeError(
                f"{n} working days from {start} runs outside the loaded years {self.years}"
            )
        found = date.fromordinal(w[i])
        # the years in between must all be loaded, or a missing year would be skipped silently
        self._require(*((start + _DAY, found) if n > 0 else (found, start - _DAY)))
        return found

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b]: a excluded, b included; negative (-count of (b, a]) if b < a.
        Raises CalendarRangeError when a day of the interval lies outside the loaded years."""
        if a == b:
            return 0
        lo, hi = min(a, b), max(a, b)
        self._require(lo + _DAY, hi)
        count = bisect_right(self._working, hi.toordinal()) - bisect_right(
            self._working, lo.toordinal()
        )
        return count if b > a else -count

    def working_day_deadline(self, start: datetime, n: int, tz: str = DEFAULT_TZ) -> datetime:
        """End of the n-th working day after the local date of `start` (23:59:59.999 in `tz`),
        in UTC. A feedback item filed at any time on day d and answerable within 15 working days
        is due at working_day_deadline(filed_at, 15)."""
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"naive datetime {start!r}: pass an aware datetime (UTC)")
        zone = ZoneInfo(tz)
        due_day = self.add_working_days(start.astimezone(zone).date(), n)
        return datetime.combine(due_day, _END_OF_DAY, tzinfo=zone).astimezone(UTC)

    def _require(self, first: date, last: date) -> None:
        loaded = set(self.years)
        missing = [y for y in range(first.year, last.year + 1) if y not in loaded]
        if missing:
            raise CalendarRangeError(
                f"no working-day calendar for {missing} (needed for {first}..{last}); "
                f"loaded {self.version}"
            )
