"""The province's time zone, defined once: every local day, period, deadline and working day is
counted in it (the reference's rules, the manifests' days, the boards' ranges)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload
from zoneinfo import ZoneInfo

TZ = "Asia/Ho_Chi_Minh"
"""Its name, as SQL (`toDate(at, 'Asia/Ho_Chi_Minh')`) and Grafana take it."""
VN = ZoneInfo(TZ)
TZ_SQL = f"'{TZ}'"
"""The name as a SQL string literal."""


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """A time read from the store, as UTC: the engine may hand DateTime64(3, 'UTC') back without
    its zone, every stored time is UTC, and an RFC 3339 answer needs the offset (schemathesis
    found a bare time in one)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
