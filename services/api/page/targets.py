"""Where the plans' targets stand, for the page: the latest evaluation of each target, agency and
period (core/plans/status.py writes them to `target_status`; core/plans/reads.py reads the latest,
as GET /v1/targets does), beside the plan's own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from clickhouse_connect.driver.client import Client

from core.plans import reads
from core.plans.forecast import STATUS_LABELS
from core.plans.model import Plan, Target
from core.zone import utc

# Worst first: a reader looks for what needs action.
STATUS_ORDER: tuple[str, ...] = ("missed", "at_risk", "on_track", "met", "insufficient_data")


@dataclass(frozen=True)
class Status:
    plan: str  # id@version
    target_id: str
    agency_code: str  # '' = the target's scope as a whole
    period_start: date
    period_end: date
    status: str
    value: float | None
    threshold: float
    numerator: int
    denominator: int
    pending: int  # items in the denominator not decided yet (feedback within its deadline)
    evaluated_at: datetime | None

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


def latest_statuses(
    client: Client, first: date, last: date, agency: str | None = None
) -> list[Status]:
    """The current status of every (plan, target, agency, period) overlapping [first, last]."""
    agencies = () if agency is None else (agency,)
    return [
        Status(
            s.plan,
            s.target_id,
            s.agency_code,
            s.period_start,
            s.period_end,
            s.status,
            s.value,
            s.threshold,
            int(s.numerator),
            int(s.denominator),
            int(s.pending),
            utc(s.evaluated_at),
        )
        for s in reads.latest_statuses(client, agencies=agencies, first=first, last=last)
    ]


@dataclass
class TargetStatuses:
    plan: Plan
    target: Target
    statuses: list[Status] = field(default_factory=list)

    @property
    def scope(self) -> list[Status]:
        """The scope judged as a whole, one row per period."""
        return [s for s in self.statuses if not s.agency_code]

    @property
    def agencies(self) -> list[Status]:
        return [s for s in self.statuses if s.agency_code]


def targets_in_year(
    plans: Mapping[str, Plan], statuses: list[Status], first: date, last: date
) -> list[TargetStatuses]:
    """Every target of a plan in force during [first, last] or with a status then, in plan
    order; a status of a plan no longer loaded is left out (its words are unknown)."""
    by_key: dict[tuple[str, str], list[Status]] = {}
    for s in statuses:
        by_key.setdefault((s.plan, s.target_id), []).append(s)
    found: list[TargetStatuses] = []
    for plan in plans.values():
        in_force = plan.valid.start <= last and first <= plan.valid.end
        for target in plan.targets:
            rows = by_key.get((plan.key, target.id), [])
            if in_force or rows:
                found.append(TargetStatuses(plan, target, rows))
    return found
