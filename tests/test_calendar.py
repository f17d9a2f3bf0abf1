"""The working-day calendar: decided holidays and make-up days as data, counted the same way in
Python and in SQL."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from core.reference.calendar import (
    CalendarDataError,
    CalendarRangeError,
    WorkingCalendar,
    YearFile,
)
from core.reference.calendar_store import sync_calendar, working_days_between_sql

CAL = WorkingCalendar.load()
ICT = timezone(timedelta(hours=7))


def days(first: str, last: str) -> list[date]:
    d, end = date.fromisoformat(first), date.fromisoformat(last)
    out = []
    while d <= end:
        out.append(d)
        d += timedelta(days=1)
    return out


def working(*isodates: str) -> list[bool]:
    return [CAL.is_working_day(date.fromisoformat(x)) for x in isodates]


@pytest.mark.pure
def test_tet_2025_break_as_decided() -> None:
    # Catches: wrong or missing Tết days (25/1-2/2/2025, 9 days, CV 8726/VPCP-KGVX), or the days
    # around the break wrongly taken off.
    assert not any(CAL.is_working_day(d) for d in days("2025-01-25", "2025-02-02"))
    assert working("2025-01-24", "2025-02-03") == [True, True]


@pytest.mark.pure
def test_reunification_day_2025_swap_and_make_up_saturday() -> None:
    # Catches: a make-up Saturday ignored (26/4/2025 worked for Friday 2/5) or the swapped Friday
    # left as a working day.
    assert working("2025-04-26", "2025-04-30", "2025-05-01", "2025-05-02") == [
        True,
        False,
        False,
        False,
    ]
    assert working("2025-04-29", "2025-05-03", "2025-05-04", "2025-05-05") == [
        True,
        False,
        False,
        True,
    ]


@pytest.mark.pure
def test_national_day_2025_and_other_years_swaps() -> None:
    # Catches: Quốc khánh taken as one day, or the adjacent day on the wrong side of 2/9; the 2024
    # and 2026 swaps (29/4/2024 ↔ 4/5/2024, 2/1/2026 ↔ 10/1/2026, 31/8/2026 ↔ 22/8/2026) missing.
    assert working("2025-08-29", "2025-09-01", "2025-09-02", "2025-09-03") == [
        True,
        False,
        False,
        True,
    ]
    assert working("2024-04-29", "2024-05-04", "2024-09-03") == [False, True, False]
    assert working("2026-01-02", "2026-01-10", "2026-08-22", "2026-08-31") == [
        False,
        True,
        True,
        False,
    ]


@pytest.mark.pure
def test_compensatory_days_for_holidays_on_weekends() -> None:
    # Catches: missing nghỉ bù (BLLĐ 2019 Điều 111.3): 1/1/2022 Sat → Mon 3/1; Giỗ Tổ 29/4/2023
    # Sat and 30/4 Sun → 2/5, 3/5; Giỗ Tổ 26/4/2026 Sun → Mon 27/4; 2/9/2023 Sat → Mon 4/9.
    assert (
        working("2022-01-03", "2023-05-02", "2023-05-03", "2026-04-27", "2023-09-04") == [False] * 5
    )
    assert CAL.day(date(2026, 4, 26)).name.startswith("Giỗ Tổ Hùng Vương")


@pytest.mark.pure
def test_fifteen_working_days_across_tet() -> None:
    # Catches: a feedback deadline counted in calendar days, Monday-Friday only, from the filing
    # day itself, or from the UTC date.
    # Filed Wed 22/1/2025 10:00 (+07). Counting from the next day: Thu 23/1 (1), Fri 24/1 (2),
    # Tết 25/1-2/2 off, 3-7/2 (3-7), 10-14/2 (8-12), Mon 17/2 (13), Tue 18/2 (14), Wed 19/2 (15).
    filed = datetime(2025, 1, 22, 10, 0, tzinfo=ICT)
    assert CAL.add_working_days(date(2025, 1, 22), 15) == date(2025, 2, 19)
    assert CAL.working_day_deadline(filed, 15) == datetime(2025, 2, 19, 16, 59, 59, 999_000, UTC)
    # Filed Fri 13/2/2026: Tết 14/2-22/2 off, 23-27/2 (1-5), 2-6/3 (6-10), 9-13/3 (11-15).
    assert CAL.add_working_days(date(2026, 2, 13), 15) == date(2026, 3, 13)
    # 18:00 UTC on 22/1 is already 01:00 on 23/1 in Hà Nội: the first working day is Fri 24/1.
    late = datetime(2025, 1, 22, 18, 0, tzinfo=UTC)
    assert CAL.working_day_deadline(late, 1) == datetime(2025, 1, 24, 16, 59, 59, 999_000, UTC)


@pytest.mark.pure
def test_add_working_days_conventions() -> None:
    # Catches: an off-by-one in the documented convention (start never counted for n != 0; n = 0
    # is start or the next working day; negative n counts backwards).
    fri, sat, tet = date(2025, 1, 24), date(2025, 1, 25), date(2025, 1, 29)
    assert CAL.add_working_days(fri, 0) == fri
    assert CAL.add_working_days(sat, 0) == date(2025, 2, 3)
    assert CAL.add_working_days(tet, 0) == date(2025, 2, 3)
    assert CAL.add_working_days(fri, 1) == date(2025, 2, 3)
    assert CAL.add_working_days(date(2025, 2, 3), -1) == fri
    assert CAL.add_working_days(sat, -1) == fri
    assert CAL.working_days_between(fri, date(2025, 2, 3)) == 1
    assert CAL.working_days_between(date(2025, 2, 3), fri) == -1
    assert CAL.working_days_between(tet, tet) == 0


@pytest.mark.pure
def test_add_and_between_are_inverse() -> None:
    # Catches: add_working_days and working_days_between disagreeing anywhere in the loaded years,
    # e.g. around make-up Saturdays or across a year boundary.
    rng = random.Random(20250125)
    for _ in range(500):
        start = date(2022, 1, 1) + timedelta(days=rng.randrange(6 * 365 - 60))
        n = rng.randint(1, 40)
        due = CAL.add_working_days(start, n)
        assert CAL.is_working_day(due)
        assert CAL.working_days_between(start, due) == n
        assert CAL.add_working_days(due, -n) <= start < due


@pytest.mark.pure
def test_dates_outside_the_loaded_years_raise() -> None:
    # Catches: an unknown year silently treated as plain Monday-Friday, including a year missing
    # in the middle of the loaded range.
    with pytest.raises(CalendarRangeError):
        CAL.is_working_day(date(2021, 6, 1))
    with pytest.raises(CalendarRangeError):
        CAL.add_working_days(date(2027, 12, 28), 10)
    with pytest.raises(CalendarRangeError):
        CAL.working_days_between(date(2021, 6, 1), date(2022, 6, 1))
    with pytest.raises(CalendarRangeError):
        WorkingCalendar.load([2030])
    gap = WorkingCalendar.load([2022, 2024])
    with pytest.raises(CalendarRangeError):
        gap.add_working_days(date(2022, 12, 30), 10)
    with pytest.raises(CalendarRangeError):
        gap.working_days_between(date(2022, 12, 1), date(2024, 1, 10))
    # (2021-12-31, 2022-01-05] holds only loaded days: 1/1 Sat holiday, 2/1 Sun, 3/1 nghỉ bù.
    assert CAL.working_days_between(date(2021, 12, 31), date(2022, 1, 5)) == 2
    with pytest.raises(ValueError):
        CAL.working_day_deadline(datetime(2025, 1, 22, 10, 0), 15)


@pytest.mark.pure
def test_version_names_every_year_file() -> None:
    # Catches: a figure unable to say which calendar it used, or 2027 not flagged as provisional.
    assert CAL.version == "vn:2022.1,2023.1,2024.1,2025.1,2026.1,2027.0-provisional"
    assert CAL.provisional_years == (2027,)
    assert CAL.year_version(2025) == "vn:2025.1"
    for year in CAL.years:
        for md in ("01-01", "04-30", "05-01", "09-02"):
            assert CAL.day(date.fromisoformat(f"{year}-{md}")).kind == "holiday"


@pytest.mark.pure
def test_malformed_year_files_are_refused() -> None:
    # Catches: a typo in a year file (wrong year, weekday make-up day, duplicate date) loaded as if
    # it were a decision.
    base: dict[str, Any] = {
        "calendar": "vn",
        "year": 2025,
        "version": "2025.9",
        "status": "decided",
    }

    def entry(d: str, kind: str = "holiday") -> dict[str, str]:
        return {"date": d, "kind": kind, "name": "x"}

    for bad_days in (
        [entry("2024-12-31")],
        [entry("2025-04-28", "makeup_workday")],
        [entry("2025-01-01"), entry("2025-01-01")],
        [entry("2025-01-01", "workday")],
    ):
        with pytest.raises(CalendarDataError):
            YearFile.parse({**base, "days": bad_days}, 2025)
    with pytest.raises(CalendarDataError):
        YearFile.parse({**base, "version": "1"}, 2025)


def stored_days(client: Client) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in client.query(
            "SELECT day, is_working, kind, name, calendar_version FROM calendar_days FINAL "
            "WHERE day BETWEEN '2022-01-01' AND '2027-12-31' ORDER BY day"
        ).result_rows
    ]


def test_sync_is_idempotent_and_sql_agrees_with_python(clickhouse: Client) -> None:
    # Catches: a sync that duplicates or never replaces days, and an SQL count that disagrees with
    # Python (off-by-one at either end, sign, make-up days, unloaded years not NULL).
    sync_calendar(clickhouse, CAL)
    assert sync_calendar(clickhouse, CAL) == 0
    rows = stored_days(clickhouse)
    assert len(rows) == 6 * 365 + 1  # 2024 is a leap year
    assert rows[0] == (date(2022, 1, 1), 0, "holiday", "Tết Dương lịch", "vn:2022.1")

    # A new version of one year file rewrites that year only, and the rewrite replaces the day.
    y2025 = CAL.year_files[3]
    assert y2025.year == 2025 and y2025.listed[-1].day == date(2025, 9, 2)
    bumped = replace(y2025, version="2025.99", listed=y2025.listed[:-1])  # drops 2/9/2025
    edited = WorkingCalendar((*CAL.year_files[:3], bumped, *CAL.year_files[4:]))
    try:
        assert sync_calendar(clickhouse, edited) == 365
        assert (date(2025, 9, 2), 1, "workday", "", "vn:2025.99") in stored_days(clickhouse)
    finally:
        assert sync_calendar(clickhouse, CAL) == 365
    assert stored_days(clickhouse) == rows

    rng = random.Random(7)
    lo, span = date(2021, 11, 1), (date(2028, 2, 1) - date(2021, 11, 1)).days
    pairs = [
        (lo + timedelta(rng.randrange(span)), lo + timedelta(rng.randrange(span)))
        for _ in range(200)
    ]
    pairs += [(date(2021, 12, 31), date(2022, 1, 5)), (date(2025, 1, 24), date(2025, 1, 24))]
    expr = working_days_between_sql("p.1", "p.2")
    got = clickhouse.query(
        f"SELECT p.1, p.2, {expr} FROM (SELECT arrayJoin({{pairs:Array(Tuple(Date, Date))}}) AS p)",
        parameters={"pairs": pairs},
    ).result_rows
    assert sorted((a, b) for a, b, _ in got) == sorted(pairs)
    for a, b, sql in got:
        try:
            expected: int | None = CAL.working_days_between(a, b)
        except CalendarRangeError:
            expected = None
        assert sql == expected, (a, b)


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("2026-01-01", "2026-12-31"),  # a year inside the calendar
        ("2021-11-20", "2022-02-10"),  # across the calendar's first day
        ("2015-01-01", "2016-12-31"),  # wholly before it
        ("2027-11-15", "2028-02-10"),  # across its last working day
        ("2031-01-01", "2031-01-31"),  # wholly after it
        ("2026-02-16", "2026-02-16"),  # one day (Tết)
    ],
)
def test_feedback_deadline_lookup_equals_the_calendar_lookups(
    clickhouse: Client, first: str, last: str
) -> None:
    # Catches: the feedback deadline's array (sql_params.filed_deadlines, read by FILED_DEADLINE)
    # drifting from the working-day lookups the SQL made per row before it (and still makes for
    # the apology deadlines): an entry shifted by a day, the wrong N, a period before or after
    # the calendar read as no deadline where the lookups gave one, or the reverse.
    from core.figures.periods import Period
    from core.figures.sql_params import (
        FILED_DEADLINE,
        _calendar_params,
        filed_deadlines,
        first_index,
        working_day,
    )

    period = Period.from_dates(date.fromisoformat(first), date.fromisoformat(last))
    compared = 0
    for n in (1, 5, 15):
        sql = (
            f"SELECT filed_day, {FILED_DEADLINE} AS fast, "
            f"{working_day('filed_day', 'filed_first', '{n:Int32} - 1')} AS plain FROM ("
            f"SELECT arrayJoin({{days:Array(Date)}}) AS filed_day, "
            f"{first_index('addDays(filed_day, 1)')} AS filed_first)"
        )
        params = {
            **_calendar_params(),
            **filed_deadlines(period, n),
            "n": n,
            "days": days(first, last),
        }
        rows = clickhouse.query(sql, parameters=params).result_rows
        assert rows and [r for r in rows if r[1] != r[2]] == [], (first, last, n)
        compared += sum(r[2] is not None for r in rows)
    # the cases inside the calendar compare real deadlines, not NULL with NULL
    assert compared > 0 or first >= "2028"
