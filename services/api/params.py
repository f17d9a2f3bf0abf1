"""The query parameters several routes share (lists, rule sets, roll-up, a dashboard's time
range) and how they are read: below the routes and the answers built from them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import HTTPException, Query

from core.zone import VN

ListParam = Annotated[
    list[str] | None,
    Query(description="Repeat the parameter or separate values with commas", max_length=200),
]


RuleSetParam = Annotated[
    str | None,
    Query(description="Rule set name@version (GET /v1/rule-sets); default the reference"),
]


RollupParam = Annotated[
    bool,
    Query(description="Count an agency with everything under it in the org tree of the period"),
]

# A dashboard's time range (Grafana's ${__from} and ${__to}): the local days it touches.
FromMsParam = Annotated[
    int | None,
    Query(
        description="Instead of `from`: the start of a time range in Unix milliseconds "
        "(Grafana's ${__from}); the figure covers the Asia/Ho_Chi_Minh day it falls on",
        ge=-2_208_988_800_000,  # 1900-01-01
        le=10_413_792_000_000,  # 2300-01-01
    ),
]
ToMsParam = Annotated[
    int | None,
    Query(
        description="Instead of `to`: the end of a time range in Unix milliseconds "
        "(Grafana's ${__to}); the figure covers up to the Asia/Ho_Chi_Minh day it falls on",
        ge=-2_208_988_800_000,
        le=10_413_792_000_000,
    ),
]


def range_days(
    first: date | None, last: date | None, from_ms: int | None, to_ms: int | None
) -> tuple[date | None, date | None]:
    """The days a question covers: `from`/`to`, or the local days of a dashboard's range.

    A board's range is a pair of instants; this service counts whole Asia/Ho_Chi_Minh days, so a
    range covers every day it touches, its first and last included (a range from 22:00 to 02:00
    covers both days). The conversion happens here, once, for the boards and any other client."""
    if from_ms is None and to_ms is None:
        return first, last
    if first is not None or last is not None:
        raise HTTPException(422, "give `from`/`to` (days) or `from_ms`/`to_ms` (a range), not both")
    day = {
        name: None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).astimezone(VN).date()
        for name, ms in (("from", from_ms), ("to", to_ms))
    }
    return day["from"], day["to"]


def split_list(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(dict.fromkeys(out))
