"""The QĐ 766 index (100 points) per agency scope and period, as the metrics reference §4 writes it.

Each indicator carries its numerator, denominator, rate (in the rule set's unit and decimals),
points and the scoring rule used. An indicator the events and the catalogue cannot support is
reported as missing, never as zero, and the total says how many points could not be assessed.

How a rate becomes points is a rule (rules.Rules.points_from): reference@1 scored the rate as
shown, a fraction rounded to 2 decimals (5/9 → 0.56, 11.2 of 20 points), and added the points as
shown; from reference@2 the rate is a percentage like every other figure (55.56) and points come
from the exact numerator / denominator (11.11), kept exact (Fraction) until shown, so a group or
the total is the sum of unrounded points, rounded once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from core.figures import rules
from core.figures.feedback_sql import feedback_rows
from core.figures.index766_days import by_day
from core.figures.index766_scores import GROUPS, INDICATORS, Score, points_sum, score
from core.figures.index766_sql import FEEDBACK_SQL, by_item
from core.figures.periods import Period
from core.figures.pruning import day_split, prune_clause
from core.figures.reads import Read, consistently
from core.figures.rows import named_rows
from core.figures.rules import RuleSet
from core.figures.sql_params import scope_params
from core.reference.catalog import Catalog, ProcedureInfo
from core.reference.org_tree import OrgTree
from core.storage.pool import run_all
from core.zone import utc


class WorkingDays(Protocol):
    @property
    def version(self) -> str: ...

    def working_days_between(self, a: date, b: date) -> int: ...


@dataclass
class Index766:
    scores: list[Score]
    events: int
    watermark: datetime | None
    rule_set: str
    calendar: str
    catalog: str
    notes: list[str] = field(default_factory=list)
    exact: bool = False  # points kept exact until shown (rules.Rules.points_from)

    def groups(self) -> list[dict[str, Any]]:
        out = []
        for gid, (label, max_points) in GROUPS.items():
            mine = [s for s in self.scores if s.indicator.group == gid]
            out.append(
                {
                    "group": gid,
                    "label": label,
                    "max_points": max_points,
                    "points": points_sum(mine, self.exact),
                    "not_assessed_points": sum(
                        s.indicator.max_points for s in mine if s.points is None
                    ),
                }
            )
        return out

    @property
    def total(self) -> float:
        return points_sum(self.scores, self.exact)

    @property
    def not_assessed(self) -> float:
        return sum(s.indicator.max_points for s in self.scores if s.points is None)


Counts = dict[str, Any]


def leaf_counts(
    client: Client,
    period: Period,
    now: datetime,
    agencies: tuple[str, ...],
    *,
    as_of: datetime | None = None,
    rule_set: RuleSet | None = None,
    read: Read | None = None,
) -> dict[str, tuple[Counts, Counts]]:
    """Per agency code: (dossier counts, feedback counts). Counts add up across agencies
    (numbers sum, procedure sets unite), so any node of the org tree is a sum of leaves.
    `read`: as MetricQuery.run()."""

    def ask(read: Read) -> dict[str, tuple[Counts, Counts]]:
        where, params = scope_params(period, now, agencies, as_of, rule_set or rules.get())
        t = params["judged_at"]
        out: dict[str, tuple[Counts, Counts]] = {}
        if read.counts and as_of is None and day_split("finished", period, now, params) is not None:
            dossier_sql = by_day(where, params, read, period, now)
        else:
            dossier_sql = by_item(where, read, period, t)
        f_prune = prune_clause("filed", period.start, period.end, t)
        f_sql = FEEDBACK_SQL.replace(
            "{rows}", feedback_rows(where, read=read, prune=f_prune, agencies=where)
        )
        # independent reads: side by side when the client is a pool (core/storage/pool.py)
        *dossier_rows, feedback = run_all(
            client,
            [
                functools.partial(named_rows, client, query, params)
                for query in [*dossier_sql, f_sql]
            ],
        )
        for rows in dossier_rows:
            for row in rows:
                row.pop("procs", None)
                code = row.pop("agency_code")
                if not any(v for k, v in row.items() if k != "watermark"):
                    continue  # nothing of this agency in this read
                dossiers, _ = out.setdefault(code, ({}, {}))
                _add(dossiers, row)
        for row in feedback:
            code = row.pop("agency_code")
            out[code] = (out.get(code, ({}, {}))[0], row)
        return out

    return consistently(client, as_of, read, ask)


def _add(target: Counts, source: Counts) -> None:
    for key, value in source.items():
        if isinstance(value, list):
            target[key] = sorted(set(target.get(key, [])) | set(value))
        elif key == "watermark":
            value = utc(value)
            current = target.get(key)
            target[key] = value if current is None or (value and value > current) else current
        else:
            target[key] = target.get(key, 0) + int(value)


def combine(parts: list[tuple[Counts, Counts]]) -> tuple[Counts, Counts]:
    dossiers: Counts = {}
    feedback: Counts = {}
    for d, f in parts:
        for target, source in ((dossiers, d), (feedback, f)):
            _add(target, {k: v for k, v in source.items() if k != "agency_code"})
    return dossiers, feedback


def compute(
    client: Client,
    period: Period,
    now: datetime,
    agencies: tuple[str, ...],
    *,
    calendar: WorkingDays,
    procedures: list[ProcedureInfo] | None,
    catalog_version: str = "",
    as_of: datetime | None = None,
    rule_set: RuleSet | None = None,
) -> Index766:
    """The index of one agency scope (already expanded through the org tree)."""
    chosen = rule_set or rules.get()
    leaves = leaf_counts(client, period, now, agencies, as_of=as_of, rule_set=chosen)
    dossiers, feedback = combine(list(leaves.values()))
    return index_for(dossiers, feedback, procedures, period, calendar, chosen, catalog_version)


def index_for(
    dossiers: Counts,
    feedback: Counts,
    procedures: list[ProcedureInfo] | None,
    period: Period,
    calendar: WorkingDays,
    rule_set: RuleSet,
    catalog_version: str = "",
) -> Index766:
    """`procedures`: catalogue entries in scope (valid at the period end), or None when no
    catalogue is loaded (catalogue-based indicators are then missing)."""
    counts = _counts(dossiers, feedback, procedures, period, calendar)
    scores = []
    for indicator in INDICATORS:
        numerator, denominator = counts.get(indicator.id, (None, None))
        scores.append(score(indicator, numerator, denominator, rule_set))
    watermarks = [w for w in (dossiers.get("watermark"), feedback.get("watermark")) if w]
    return Index766(
        scores=scores,
        events=int(dossiers.get("events", 0)) + int(feedback.get("events", 0)),
        watermark=max(watermarks, default=None),
        rule_set=rule_set.id,
        calendar=calendar.version,
        catalog=catalog_version if procedures is not None else "",
        exact=rule_set.rules.points_from == "exact_rate",
    )


# The indicators counted from dossier and feedback events (the rest from the catalogue): an
# index none of these has anything to count in is no data, whatever the catalogue gives.
FROM_EVENTS = frozenset({"2.1", "3.3", "3.6", "4.1", "4.2", "5.2", "5.3", "5.4"})


def _counts(
    dossiers: Counts,
    feedback: Counts,
    procedures: list[ProcedureInfo] | None,
    period: Period,
    calendar: WorkingDays,
) -> dict[str, tuple[int, int]]:
    def n(source: Counts, key: str) -> int:
        return int(source.get(key, 0))

    d, f = dossiers, feedback
    processed = n(d, "n_finished") + n(d, "n_open_end")
    on_time = n(d, "n_finished_ok") + n(d, "n_open_ok")
    counts: dict[str, tuple[int, int]] = {
        "2.1": (on_time, processed),
        "3.3": (n(d, "n_received_online_e"), n(d, "n_received")),
        "3.6": (n(d, "n_paid_online"), n(d, "n_paid")),
        "4.1": (n(d, "n_paper_e"), n(d, "n_paper")),
        "4.2": (n(d, "n_digitized"), n(d, "n_received")),
        "5.2": (n(f, "n_handled_ok"), n(f, "n_filed")),
        "5.3": (n(f, "n_filed") - n(f, "n_not_satisfied"), n(f, "n_filed")),
        # 5.4 = 100% − (% overdue + % unsatisfied), as a ratio over the processed dossiers
        "5.4": (max(0, on_time - n(d, "n_unsatisfied")), processed),
    }
    if procedures is not None:
        counts.update(_catalog_counts(procedures, d, period, calendar))
    return counts


def _catalog_counts(
    procedures: list[ProcedureInfo],
    d: Counts,
    period: Period,
    calendar: WorkingDays,
) -> dict[str, tuple[int, int]]:
    first, last = period.first_day, period.last_day
    in_period = [p for p in procedures if first <= p.decision_date <= last]
    decided_in_time = sum(
        1
        for p in in_period
        if calendar.working_days_between(p.decision_date, p.legal_basis_effective_date) >= 5
    )
    made_public = sum(
        1
        for p in in_period
        if p.public_in_national_db_at is not None
        and calendar.working_days_between(p.decision_date, p.public_in_national_db_at) <= 5
    )
    online = [p for p in procedures if p.online]
    fee = [p for p in procedures if p.fee_bearing]
    with_online_dossier = set(d.get("n_procs_online", []))
    with_online_payment = set(d.get("n_procs_paid_online", []))
    return {
        "1.1": (decided_in_time, len(in_period)),
        "1.2": (made_public, len(in_period)),
        "1.3": (sum(1 for p in procedures if p.parts_complete), len(procedures)),
        "3.1": (len(online), len(procedures)),
        "3.2": (sum(1 for p in online if p.code in with_online_dossier), len(online)),
        "3.5": (sum(1 for p in fee if p.online_payment_integrated), len(fee)),
        "3.5b": (sum(1 for p in fee if p.code in with_online_payment), len(fee)),
    }


def procedures_in_scope(
    catalog: Catalog, tree: OrgTree, codes: set[str]
) -> list[ProcedureInfo] | None:
    """Procedures under the scope's authority: those applicable at a level the scope has. The
    catalogue does not assign procedures to agencies, so a department sees every province-level
    procedure (stated in the answer); None when no catalogue is loaded."""
    if len(catalog) == 0:
        return None
    levels = {tree.level(c) for c in codes if c in tree} or {"province", "district", "commune"}
    return [p for p in catalog if levels & set(p.levels)]
