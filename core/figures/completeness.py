"""Completeness as figures and the audit read it (issue 18): the latest judgment of each
agency-day (core/figures/reconciliation.py writes them), and their summary for a period and
scope, kept per agency."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures.manifests import current_manifests
from core.figures.reads import Read
from core.figures.reconciliation import RECONCILIATION_COLUMNS, stored_counts
from core.zone import VN

_DT = "DateTime64(3, 'UTC')"


STATUS_LABELS: dict[str, str] = {
    "matched": "Khớp",
    "missing": "Thiếu hồ sơ",
    "extra": "Thừa hồ sơ",
    "missing_and_extra": "Thiếu và thừa hồ sơ",
    "counts_differ": "Lệch số liệu",
}


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
