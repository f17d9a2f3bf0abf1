"""What a figure question names: its period (whole local days), filters and grouping, and the
rows a figure answers with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from core.zone import VN

GroupBy = Literal["agency", "domain", "level", "day", "month"]
# The days and instants a query can name: ClickHouse's DateTime64(3) range, a day inside each end.
FIRST_DAY, LAST_DAY = date(1900, 1, 2), date(2299, 12, 30)
FIRST_INSTANT = datetime(1900, 1, 2, tzinfo=UTC)
LAST_INSTANT = datetime(2299, 12, 30, tzinfo=UTC)


class MetricQueryError(ValueError):
    """The question cannot be asked of this metric (e.g. a domain filter on feedback)."""


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC

    @classmethod
    def from_dates(cls, first: date, last: date) -> Period:
        """Whole calendar days in Asia/Ho_Chi_Minh, `last` included."""
        if last < first:
            raise MetricQueryError("`to` is before `from`")
        if first < FIRST_DAY or last > LAST_DAY:
            # DateTime64(3) holds 1900..2299; beyond it Python's datetime overflows too
            raise MetricQueryError(f"dates must lie within {FIRST_DAY}..{LAST_DAY}")
        start = datetime.combine(first, time(), VN).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time(), VN).astimezone(UTC)
        return cls(start, end)

    @property
    def first_day(self) -> date:
        return self.start.astimezone(VN).date()

    @property
    def last_day(self) -> date:
        return (self.end.astimezone(VN) - timedelta(days=1)).date()


@dataclass(frozen=True)
class Filters:
    agencies: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricRow:
    group: str | None
    numerator: int
    denominator: int
    events: int = 0  # distinct events behind the items counted (provenance)
    watermark: datetime | None = None  # newest ingest time among them
    # Items of the denominator outside the numerator whose outcome is not decided yet at the
    # judging instant (Metric.pending: feedback still within its answer deadline); 0 for a
    # figure without that notion.
    pending: int = 0

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True)
class DailyRow:
    agency: str
    day: date
    hits: int
    total: int
    pending: int
    watermark: datetime | None


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)
