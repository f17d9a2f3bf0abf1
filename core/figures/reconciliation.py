"""Completeness: each agency's days as its source system reported them against what motcua
stored (issue 18).

An integrator publishes a manifest per agency and local day (`manifest.daily`, table
`manifests`, migration 0030): how many dossiers its system received and finished that day, how
many were open at its end, how much feedback was filed and answered, and, for a small day, the
ids of the dossiers received. The reconciler judges each such day against the facts and writes
one row per judgment (`reconciliation_days`, 0031):

- received: by id when the manifest lists ids (missing = listed but not held as received that day
  by that agency; extra = held but not listed), else by count (missing = reported - stored when
  positive, extra = the other way);
- finished, open at the end of the day, feedback filed and answered: by count;
- status: `matched` when everything agrees; else `missing` / `extra` / `missing_and_extra` for
  the received dossiers, `counts_differ` when only the other counts disagree.

A day is judged again whenever its manifest changes or an item of that agency changes, so a late
event that closes a gap closes it at the next step. Figures read the latest judgments for their
completeness (core/figures/completeness.py `summary`): the share of the reported dossiers that
motcua holds, and the days of the scope's manifest-sending agencies that have no manifest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures.manifests import (
    IN_KEYS,
    Key,
    Manifest,
    current_manifests,
    day_start,
    key_params,
    key_text,
)
from core.figures.pruning import part_month_of
from core.figures.reads import Read
from core.figures.rows import item_rows
from core.figures.sql_params import used
from core.zone import TZ_SQL, VN

_DT = "DateTime64(3, 'UTC')"


# How far back the open dossiers at a day's end are compared (reconciliation_days.stored_open).
OPEN_WINDOW_DAYS = 45


RECONCILIATION_COLUMNS: tuple[str, ...] = (
    "agency_code",
    "day",
    "evaluated_at",
    "data_until",
    "source",
    "manifest_at",
    "has_ids",
    "reported_received",
    "stored_received",
    "held_received",
    "missing",
    "extra",
    "reported_finished",
    "stored_finished",
    "reported_open",
    "stored_open",
    "reported_feedback_filed",
    "stored_feedback_filed",
    "reported_feedback_answered",
    "stored_feedback_answered",
    "status",
)


@dataclass
class Stored:
    received: int = 0
    finished: int = 0
    open: int | None = None
    feedback_filed: int = 0
    feedback_answered: int = 0
    ids: frozenset[str] = frozenset()


def stored_counts(
    client: Client, keys: Sequence[Key], read: Read, now: datetime, id_keys: Iterable[Key] = ()
) -> dict[Key, Stored]:
    """What motcua holds of these agency-days, by the figures' rules: dossiers received and
    finished on the day, open at its end (only within OPEN_WINDOW_DAYS of `now`), feedback filed
    and answered, and the ids received on the `id_keys` days."""
    out: dict[Key, Stored] = defaultdict(Stored)
    if not keys:
        return out
    params = key_params(keys)
    params["id_keys"] = sorted(key_text(k) for k in id_keys)
    agencies = "agency_code IN {agencies:Array(String)}"
    lo_month = part_month_of(params["lo"])
    # one row per dossier: its versions summed (sign), so a changed receipt counts once
    received = item_rows(
        "dossier",
        agencies,
        f"part_month >= {lo_month} AND received_at >= {{lo:{_DT}}} AND received_at < {{hi:{_DT}}}",
        read,
        agencies,
    )
    by_day = f"""
SELECT agency_code, day, toInt64(count()) AS n,
    groupArrayIf(dossier_id, concat(agency_code, '|', toString(day)) IN {{id_keys:Array(String)}})
FROM (
    SELECT agency_code, dossier_id, toDate(received_at, {TZ_SQL}) AS day
    FROM ({received})
    GROUP BY agency_code, dossier_id, received_at HAVING sum(sign) > 0
)
WHERE {IN_KEYS.format(day="day")}
GROUP BY agency_code, day
"""
    for agency, day, n, ids in _query(client, by_day, params, read):
        out[(agency, day)].received = int(n)
        out[(agency, day)].ids = frozenset(ids)
    finished = item_rows(
        "dossier",
        agencies,
        f"part_month >= {lo_month} AND end_at >= {{lo:{_DT}}} AND end_at < {{hi:{_DT}}}",
        read,
        agencies,
    )
    end_sql = f"""
SELECT agency_code, toDate(end_at, {TZ_SQL}) AS day, toInt64(sum(sign))
FROM ({finished})
WHERE end_at >= {{lo:{_DT}}} AND end_at < {{hi:{_DT}}} AND {IN_KEYS.format(day="day")}
GROUP BY agency_code, day
"""
    for agency, day, n in _query(client, end_sql, params, read):
        out[(agency, day)].finished = int(n)
    recent = [k for k in keys if k[1] >= now.astimezone(VN).date() - timedelta(OPEN_WINDOW_DAYS)]
    if recent:
        for key, n in _open_at_day_end(client, recent, read).items():
            out[key].open = n
        for key in recent:
            if out[key].open is None:
                out[key].open = 0
    feedback = item_rows(
        "feedback",
        agencies,
        f"part_month <= {part_month_of(params['hi'])} AND filed_at < {{hi:{_DT}}}",
        read,
        agencies,
    )
    fb_sql = f"""
SELECT agency_code, day, toInt64(sumIf(sign, kind = 1)), toInt64(sumIf(sign, kind = 2))
FROM (
    SELECT agency_code, sign, k.1 AS kind, toDate(k.2, {TZ_SQL}) AS day
    FROM ({feedback})
    ARRAY JOIN [(1, filed_at), (2, answered_at)] AS k
    WHERE k.2 >= {{lo:{_DT}}} AND k.2 < {{hi:{_DT}}}
)
WHERE {IN_KEYS.format(day="day")}
GROUP BY agency_code, day
"""
    for agency, day, filed, answered in _query(client, fb_sql, params, read):
        out[(agency, day)].feedback_filed = int(filed)
        out[(agency, day)].feedback_answered = int(answered)
    return out


def _open_at_day_end(client: Client, keys: Sequence[Key], read: Read) -> dict[Key, int]:
    """Dossiers received by the end of each of these days and not finished by then."""
    params = key_params(keys)
    params["ends"] = sorted({day_start(k[1] + timedelta(days=1)) for k in keys})
    agencies = "agency_code IN {agencies:Array(String)}"
    rows = item_rows(
        "dossier",
        agencies,
        f"part_month >= {part_month_of(params['lo'])}",
        read,
        agencies,
    )
    sql = f"""
SELECT agency_code, toDate(subtractMilliseconds(e, 1), {TZ_SQL}) AS day, toInt64(sum(sign))
FROM ({rows})
ARRAY JOIN {{ends:Array({_DT})}} AS e
WHERE received_at < e AND (end_at IS NULL OR end_at >= e)
    AND {IN_KEYS.format(day="day")}
GROUP BY agency_code, day
"""
    return {(str(a), d): int(n) for a, d, n in _query(client, sql, params, read)}


def _query(client: Client, sql: str, params: dict[str, Any], read: Read) -> list[Any]:
    if read.as_of:
        raise ValueError("the reconciler judges the live facts only")
    return list(client.query(sql, parameters=used(sql, params)).result_rows)


def judge(manifest: Manifest, stored: Stored, now: datetime, data_until: datetime) -> list[Any]:
    """The reconciliation_days row of one agency-day."""
    if manifest.has_ids:
        listed = frozenset(manifest.ids)
        held = len(listed & stored.ids)
        missing, extra = len(listed - stored.ids), len(stored.ids - listed)
    else:
        held = min(stored.received, manifest.received)
        missing = max(manifest.received - stored.received, 0)
        extra = max(stored.received - manifest.received, 0)
    if missing and extra:
        status = "missing_and_extra"
    elif missing:
        status = "missing"
    elif extra:
        status = "extra"
    elif (
        stored.finished != manifest.finished
        or (stored.open is not None and stored.open != manifest.open)
        or stored.feedback_filed != manifest.feedback_filed
        or stored.feedback_answered != manifest.feedback_answered
    ):
        status = "counts_differ"
    else:
        status = "matched"
    return [
        manifest.agency_code,
        manifest.day,
        now,
        data_until,
        manifest.source,
        manifest.manifest_at,
        int(manifest.has_ids),
        manifest.received,
        stored.received,
        held,
        missing,
        extra,
        manifest.finished,
        stored.finished,
        manifest.open,
        stored.open,
        manifest.feedback_filed,
        stored.feedback_filed,
        manifest.feedback_answered,
        stored.feedback_answered,
        status,
    ]


def evaluate(
    client: Client,
    keys: Sequence[Key],
    now: datetime,
    read: Read,
    data_until: datetime | None = None,
    written: dict[Key, tuple[Any, ...]] | None = None,
) -> list[list[Any]]:
    """Judge these agency-days (those with a manifest) and write the judgments; returns the
    rows written. `data_until`: the store's clock when what is judged was read (default: now).
    `written`: the content last written per agency-day, kept by the caller: a judgment equal to
    it is not written again, so the table grows with what changes, not with the steps."""
    manifests = current_manifests(client, keys)
    if not manifests:
        return []
    judged = [(m.agency_code, m.day) for m in manifests]
    stored = stored_counts(
        client, judged, read, now, [(m.agency_code, m.day) for m in manifests if m.has_ids]
    )
    until = data_until or now
    rows, contents = [], {}
    for m in manifests:
        key = (m.agency_code, m.day)
        row = judge(m, stored[key], now, until)
        content = (*row[:2], *row[4:])  # all but evaluated_at and data_until
        if written is None or written.get(key) != content:
            rows.append(row)
            contents[key] = content
    if rows:
        client.insert("reconciliation_days", rows, column_names=list(RECONCILIATION_COLUMNS))
    if written is not None:  # only once stored: a failed insert is judged and written again
        written.update(contents)
    return rows
