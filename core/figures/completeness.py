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
completeness (`summary`): the share of the reported dossiers that motcua holds, and the days of
the scope's manifest-sending agencies that have no manifest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures.facts import SHAPES, Entity, watermark_sql
from core.figures.queries import Read, item_rows, part_month_of, used
from core.zone import TZ_SQL, VN

# How far back the open dossiers at a day's end are compared (reconciliation_days.stored_open).
OPEN_WINDOW_DAYS = 45
# The most agency-days one step judges: a first start on a store with years of manifests
# catches up over several steps instead of one long one.
MAX_KEYS_PER_STEP = 2000

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

STATUS_LABELS: dict[str, str] = {
    "matched": "Khớp",
    "missing": "Thiếu hồ sơ",
    "extra": "Thừa hồ sơ",
    "missing_and_extra": "Thiếu và thừa hồ sơ",
    "counts_differ": "Lệch số liệu",
}

_DT = "DateTime64(3, 'UTC')"

Key = tuple[str, date]


def day_start(day: date) -> datetime:
    """The UTC instant a local day begins."""
    return datetime(day.year, day.month, day.day, tzinfo=VN).astimezone(UTC)


def _key_text(key: Key) -> str:
    return f"{key[0]}|{key[1].isoformat()}"


def _key_params(keys: Sequence[Key]) -> dict[str, Any]:
    days = [k[1] for k in keys]
    return {
        "keys": [_key_text(k) for k in keys],
        "agencies": sorted({k[0] for k in keys}),
        "lo": day_start(min(days)),
        "hi": day_start(max(days) + timedelta(days=1)),
        "first_day": min(days),
        "last_day": max(days),
    }


_IN_KEYS = "concat(agency_code, '|', toString({day})) IN {{keys:Array(String)}}"

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
        AND {_IN_KEYS.format(day="day")}
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
    result = client.query(_MANIFESTS_SQL, parameters=used(_MANIFESTS_SQL, _key_params(keys)))
    return [
        Manifest(
            agency_code=str(r[0]),
            day=r[1],
            manifest_at=_utc(r[2]),
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
    params = _key_params(keys)
    params["id_keys"] = sorted(_key_text(k) for k in id_keys)
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
WHERE {_IN_KEYS.format(day="day")}
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
WHERE end_at >= {{lo:{_DT}}} AND end_at < {{hi:{_DT}}} AND {_IN_KEYS.format(day="day")}
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
WHERE {_IN_KEYS.format(day="day")}
GROUP BY agency_code, day
"""
    for agency, day, filed, answered in _query(client, fb_sql, params, read):
        out[(agency, day)].feedback_filed = int(filed)
        out[(agency, day)].feedback_answered = int(answered)
    return out


def _open_at_day_end(client: Client, keys: Sequence[Key], read: Read) -> dict[Key, int]:
    """Dossiers received by the end of each of these days and not finished by then."""
    params = _key_params(keys)
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
    AND {_IN_KEYS.format(day="day")}
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


@dataclass(frozen=True)
class DayIds:
    """The ids behind one agency-day's missing and extra counts, judged now."""

    listed: bool  # whether the manifest listed ids at all (without them, no id is known)
    missing: tuple[str, ...]  # listed by the source, not held as received that day
    extra: tuple[str, ...]  # held as received that day, not listed by the source


def day_ids(client: Client, agency: str, day: date, read: Read, now: datetime) -> DayIds | None:
    """Missing and extra ids of one agency-day from its current manifest and the live facts;
    None when the day has no manifest."""
    manifests = current_manifests(client, [(agency, day)])
    if not manifests:
        return None
    m = manifests[0]
    if not m.has_ids:
        return DayIds(listed=False, missing=(), extra=())
    held = stored_counts(client, [(agency, day)], read, now, [(agency, day)])[(agency, day)].ids
    listed = frozenset(m.ids)
    return DayIds(True, tuple(sorted(listed - held)), tuple(sorted(held - listed)))


# --- what changed since the last step ----------------------------------------------------------


def _changed_items(entity: Entity, dates: tuple[str, str]) -> str:
    """The local days of `dates` of an entity's items with a part folded in (since, until]: both
    its current facts and the versions superseded since, so a moved day is judged on both sides."""
    shape = SHAPES[entity]
    days = ", ".join(f"toDate({d}, {TZ_SQL})" for d in dates)
    return f"""
SELECT agency_code, arrayJoin([{days}]) AS day
FROM {shape.facts}
WHERE valid_to > {{since:{_DT}}} AND (agency_code, {shape.key}) IN (
    SELECT agency_code, {shape.key} FROM {shape.parts}
    WHERE folded_at > {{since:{_DT}}} AND folded_at <= {{until:{_DT}}})
    AND {dates[0]} IS NOT NULL
"""


_CHANGED_SQL = f"""
SELECT DISTINCT agency_code, day FROM manifests
WHERE ingested_at > {{since:{_DT}}} AND ingested_at <= {{until:{_DT}}}
UNION DISTINCT {_changed_items("dossier", ("received_at", "end_at"))}
UNION DISTINCT {_changed_items("feedback", ("filed_at", "answered_at"))}
"""

_MANIFEST_DAYS_SQL = """
SELECT agency_code, day FROM manifests
WHERE agency_code IN {agencies:Array(String)} AND day >= {from_day:Date}
GROUP BY agency_code, day
"""


def changed_keys(client: Client, since: datetime, until: datetime, today: date) -> set[Key]:
    """Agency-days to judge again: a manifest arrived for them, or an item received, finished,
    filed or answered on them changed. A dossier's change on day d also moves its agency's open
    count at the end of every later day, so the agency's manifest days from d on (within the open
    window) come along; a change dated today moves no ended day."""
    rows = client.query(_CHANGED_SQL, parameters={"since": since, "until": until}).result_rows
    keys = {(str(a), d) for a, d in rows if d is not None}
    window = today - timedelta(OPEN_WINDOW_DAYS)
    earliest: dict[str, date] = {}
    for agency, day in keys:
        if window <= day < today:
            earliest[agency] = min(day, earliest.get(agency, day))
    if earliest:
        recent = client.query(
            _MANIFEST_DAYS_SQL,
            parameters={"agencies": sorted(earliest), "from_day": min(earliest.values())},
        ).result_rows
        keys |= {(str(a), d) for a, d in recent if d >= earliest[str(a)]}
    return keys


def _caught_up(entity: Entity) -> str:
    """The instant up to which an entity's changes are in its facts: its refolder watermark
    while parts were folded after it (parts_progress, 0021), else now."""
    wm = watermark_sql(entity)
    folded = f"(SELECT max(folded_at) FROM parts_progress WHERE entity = '{entity}')"
    return f"if(ifNull({folded} > {wm}, 0), {wm}, now64(3))"


_UNTIL_SQL = f"SELECT least(now64(3), {_caught_up('dossier')}, {_caught_up('feedback')})"


class Reconciler:
    """Judges the agency-days that changed since its last step (run by the metrics service).

    It goes on from the newest `data_until` it wrote, so a restart misses nothing that arrived
    while it was down; on an empty table it judges every manifest day, MAX_KEYS_PER_STEP at a
    time, oldest first (`backlog` says how many are left)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._since: datetime | None = None
        self._backlog: list[Key] = []
        # what this reconciler last wrote per agency-day (evaluate's `written`)
        self._written: dict[Key, tuple[Any, ...]] = {}

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def step(self, now: datetime, read: Read) -> int:
        """Judge what changed since the last step; returns the rows written. `now` stamps the
        judgments (the service's clock); what changed is told by the store's own clock, which
        stamped the ingest and fold times it is compared with."""
        today = now.astimezone(VN).date()
        # Changed items are found through their facts, so a step looks no further than the
        # refolder got: a part folded after its watermark is seen by a later step, not lost.
        until = _utc(self._client.query(_UNTIL_SQL).result_rows[0][0])
        if self._since is not None and until <= self._since:
            until = self._since
        keys: set[Key] = set()
        if self._since is None:
            last, judged = self._client.query(
                "SELECT max(data_until), count() FROM reconciliation_days"
            ).result_rows[0]
            if judged:
                self._since = _utc(last)
            else:
                rows = self._client.query("SELECT DISTINCT agency_code, day FROM manifests")
                self._backlog = [(str(a), d) for a, d in rows.result_rows]
        if self._since is not None:
            keys = changed_keys(self._client, self._since, until, today)
        self._since = until
        pending = sorted(set(self._backlog) | keys, key=lambda k: (k[1], k[0]))
        batch, self._backlog = pending[:MAX_KEYS_PER_STEP], pending[MAX_KEYS_PER_STEP:]
        if not batch:
            return 0
        return len(evaluate(self._client, batch, now, read, until, self._written))


# --- what figures and the audit read -----------------------------------------------------------

_LATEST_SQL = f"""
SELECT agency_code, day, j.1 AS source, j.2 AS manifest_at, j.3 AS has_ids,
    j.4 AS reported_received, j.5 AS stored_received, j.6 AS held_received, j.7 AS missing,
    j.8 AS extra, j.9 AS reported_finished, j.10 AS stored_finished, j.11 AS reported_open,
    j.12 AS stored_open, j.13 AS reported_feedback_filed, j.14 AS stored_feedback_filed,
    j.15 AS reported_feedback_answered, j.16 AS stored_feedback_answered, j.17 AS status,
    judged_at
FROM (
    SELECT agency_code, day, max(evaluated_at) AS judged_at,
        argMax(tuple(source, manifest_at, has_ids, reported_received, stored_received,
                     held_received, missing, extra, reported_finished, stored_finished,
                     reported_open, stored_open, reported_feedback_filed, stored_feedback_filed,
                     reported_feedback_answered, stored_feedback_answered, status),
               evaluated_at) AS j
    FROM reconciliation_days
    WHERE day >= {{first_day:Date}} AND day <= {{last_day:Date}} AND {{where}}
        AND evaluated_at <= {{at:{_DT}}}
    GROUP BY agency_code, day
)
"""


# The columns latest_sql gives, in order.
LATEST_COLUMNS: tuple[str, ...] = (
    "agency_code",
    "day",
    "source",
    "manifest_at",
    "has_ids",
    *RECONCILIATION_COLUMNS[RECONCILIATION_COLUMNS.index("reported_received") :],
    "judged_at",
)


def latest_sql(where: str = "1") -> str:
    """The latest judgment of every agency-day of [first_day, last_day] judged by `at`,
    narrowed by `where` (a condition on agency_code)."""
    return _LATEST_SQL.replace("{where}", where)


@dataclass(frozen=True)
class Completeness:
    """How complete a figure's population is, for its period and scope."""

    reported: int  # dossiers received that the source systems reported, days with a manifest
    held: int  # of those, the ones motcua holds
    missing: int
    extra: int
    manifest_days: int  # agency-days of the period with a manifest
    days_without_manifest: int  # ended days of manifest-sending agencies without one
    agencies_without_manifests: int  # agencies of the scope that never sent one
    threshold: float

    @property
    def share(self) -> float | None:
        return None if self.reported == 0 else self.held / self.reported

    @property
    def incomplete(self) -> bool:
        """Known to lack more of the source's dossiers than the threshold allows."""
        share = self.share
        return share is not None and share < self.threshold

    def as_dict(self) -> dict[str, Any]:
        share = self.share
        return {
            "reported": self.reported,
            "held": self.held,
            "missing": self.missing,
            "extra": self.extra,
            "share": None if share is None else round(share, 6),
            "manifest_days": self.manifest_days,
            "days_without_manifest": self.days_without_manifest,
            "agencies_without_manifests": self.agencies_without_manifests,
            "threshold": self.threshold,
            "incomplete": self.incomplete,
        }


# Per agency: the latest judgment of each day, summed over the period, and the first day judged
# from LOOKBACK_DAYS before it (an agency sending manifests then expects one every day of the
# period; one that began within it, from its first). Bounded by the period, not the history.
_SUMMARY_SQL = f"""
SELECT agency_code, min(day),
    toInt64(sumIf(v.1, p)), toInt64(sumIf(v.2, p)), toInt64(sumIf(v.3, p)), toInt64(sumIf(v.4, p)),
    toInt64(countIf(p))
FROM (
    SELECT agency_code, day, day >= {{first_day:Date}} AS p,
        argMax((reported_received, held_received, missing, extra), evaluated_at) AS v
    FROM reconciliation_days
    WHERE {{where}} AND day >= {{lookback:Date}} AND day <= {{last_day:Date}}
        AND evaluated_at <= {{at:{_DT}}}
    GROUP BY agency_code, day
)
GROUP BY agency_code
"""
LOOKBACK_DAYS = 60


def summary(
    client: Client,
    first_day: date,
    last_day: date,
    at: datetime,
    agencies: Sequence[str] = (),
    threshold: float = 0.99,
) -> Completeness:
    """Completeness of the dossiers received on [first_day, last_day] by these agencies (all when
    empty), as judged by `at`. Only ended days count as expecting a manifest; an agency expects
    one from its first judged day within the period and the LOOKBACK_DAYS before it."""
    return summary_by_agency(client, first_day, last_day, at, agencies, threshold).total()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- the same summary kept per agency (issue 18: completeness on every figure) ------------------


@dataclass(frozen=True)
class AgencyDays:
    """One manifest-sending agency's share of a summary: summary()'s per-agency row."""

    first_judged: date  # its first judged day from LOOKBACK_DAYS before the period
    reported: int
    held: int
    missing: int
    extra: int
    manifest_days: int


@dataclass(frozen=True)
class ScopeCompleteness:
    """summary() of a scope, kept per agency, so that any set of its agencies (a figure's group,
    an agency with its subtree) is summed without another query. `of(agencies)` equals
    summary(…, agencies=agencies) when every one of them lies in the scope."""

    first_day: date
    last_day: date  # the last ended day counted (before first_day: nothing to count)
    agencies: tuple[str, ...]  # the scope asked for; () means every agency
    senders: dict[str, AgencyDays]  # the scope's agencies with a judgment, by code
    threshold: float

    def of(self, agencies: Iterable[str] | None = None) -> Completeness:
        """These agencies (every sender of the scope when None)."""
        if self.last_day < self.first_day:
            return Completeness(0, 0, 0, 0, 0, 0, 0, self.threshold)
        chosen = None if agencies is None else set(agencies)
        rows = [r for code, r in self.senders.items() if chosen is None or code in chosen]
        last, first = self.last_day, self.first_day
        expected = sum(max((last - max(first, r.first_judged)).days + 1, 0) for r in rows)
        manifest_days = sum(r.manifest_days for r in rows)
        scope = len(rows) if chosen is None else len(chosen)
        return Completeness(
            reported=sum(r.reported for r in rows),
            held=sum(r.held for r in rows),
            missing=sum(r.missing for r in rows),
            extra=sum(r.extra for r in rows),
            manifest_days=manifest_days,
            days_without_manifest=max(expected - manifest_days, 0),
            agencies_without_manifests=max(scope - len(rows), 0),
            threshold=self.threshold,
        )

    def total(self) -> Completeness:
        """The whole scope: summary() of the same question."""
        return self.of(self.agencies or None)


def summary_by_agency(
    client: Client,
    first_day: date,
    last_day: date,
    at: datetime,
    agencies: Sequence[str] = (),
    threshold: float = 0.99,
) -> ScopeCompleteness:
    """summary()'s one query, its rows kept per agency (ScopeCompleteness)."""
    last = min(last_day, (at.astimezone(VN) - timedelta(days=1)).date())
    if last < first_day:
        return ScopeCompleteness(first_day, last, tuple(agencies), {}, threshold)
    where = "agency_code IN {agencies:Array(String)}" if agencies else "1"
    params: dict[str, Any] = {
        "first_day": first_day,
        "last_day": last,
        "lookback": first_day - timedelta(LOOKBACK_DAYS),
        "at": at,
    }
    if agencies:
        params["agencies"] = list(agencies)
    rows = client.query(_SUMMARY_SQL.replace("{where}", where), parameters=params).result_rows
    senders = {str(r[0]): AgencyDays(r[1], *(int(v) for v in r[2:7])) for r in rows}
    return ScopeCompleteness(first_day, last, tuple(agencies), senders, threshold)
