"""The integrators' daily manifests (`manifest.daily`, table `manifests`, migration 0030) and
the agency-days they are kept by: the latest manifest of each day (issue 18)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures.sql_params import used
from core.zone import VN, utc

_DT = "DateTime64(3, 'UTC')"

Key = tuple[str, date]


def day_start(day: date) -> datetime:
    """The UTC instant a local day begins."""
    return datetime(day.year, day.month, day.day, tzinfo=VN).astimezone(UTC)


def key_text(key: Key) -> str:
    return f"{key[0]}|{key[1].isoformat()}"


def key_params(keys: Sequence[Key]) -> dict[str, Any]:
    days = [k[1] for k in keys]
    return {
        "keys": [key_text(k) for k in keys],
        "agencies": sorted({k[0] for k in keys}),
        "lo": day_start(min(days)),
        "hi": day_start(max(days) + timedelta(days=1)),
        "first_day": min(days),
        "last_day": max(days),
    }


IN_KEYS = "concat(agency_code, '|', toString({day})) IN {{keys:Array(String)}}"

_MANIFESTS_SQL = f"""
SELECT agency_code, day, m.1 AS occurred_at, m.2 AS source, m.3, m.4, m.5, m.6, m.7, m.8, m.9
FROM (
    SELECT agency_code, day,
        argMax(tuple(occurred_at, source, dossiers_received, dossiers_finished, dossiers_open,
                     feedback_filed, feedback_answered, has_ids, received_ids),
               (occurred_at, ingested_at)) AS m
    FROM manifests
    WHERE agency_code IN {{agencies:Array(String)}}
        AND day >= {{first_day:Date}} AND day <= {{last_day:Date}}
        AND {IN_KEYS.format(day="day")}
    GROUP BY agency_code, day
)
"""


@dataclass(frozen=True)
class Manifest:
    agency_code: str
    day: date
    manifest_at: datetime
    source: str
    received: int
    finished: int
    open: int
    feedback_filed: int
    feedback_answered: int
    has_ids: bool
    ids: tuple[str, ...]


def current_manifests(client: Client, keys: Sequence[Key]) -> list[Manifest]:
    """The latest manifest (by occurred_at, then ingest) of each of these agency-days; days
    without one are left out."""
    if not keys:
        return []
    result = client.query(_MANIFESTS_SQL, parameters=used(_MANIFESTS_SQL, key_params(keys)))
    return [
        Manifest(
            agency_code=str(r[0]),
            day=r[1],
            manifest_at=utc(r[2]),
            source=str(r[3]),
            received=int(r[4]),
            finished=int(r[5]),
            open=int(r[6]),
            feedback_filed=int(r[7]),
            feedback_answered=int(r[8]),
            has_ids=bool(r[9]),
            ids=tuple(r[10]),
        )
        for r in result.result_rows
    ]
