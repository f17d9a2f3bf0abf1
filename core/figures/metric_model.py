"""What a metric of the catalogue is (Metric: a population and a numerator over one row per
item) and the per-item SQL conditions the catalogue's populations are built from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.zone import TZ

Entity = Literal["dossier", "feedback"]
# Which facts rows a figure's population can lie in (core/figures/pruning.prune_clause).
Reads = Literal["finished", "open", "finished_or_open", "received", "paid", "filed"]


@dataclass(frozen=True)
class Metric:
    id: str
    label: str  # Vietnamese, shown to users
    description: str
    entity: Entity
    population: str  # SQL boolean over the per-item row: who is counted in the denominator
    numerator: str  # SQL boolean: who of them is counted in the numerator
    # SQL time expression that places an item in a day/month bucket; None for stock figures,
    # which are judged at the end of each bucket instead.
    anchor: str | None
    target: str = ""  # the plan's target, for display; the plan issue makes targets data
    # For averages: the numerator sums this integer SQL expression over the numerator's items
    # instead of counting them, and `unit` names what the rate is in.
    summed: str | None = None
    unit: str = "ratio"
    # SQL boolean: population items whose outcome is not decided yet at `t` (a feedback item
    # still within its answer deadline). Plan forecasts treat them as still to come.
    pending: str | None = None
    # Whether an item out of the numerator stays out for the rest of the period. False when it
    # can still get in (a dossier digitised later, an answer published later): a plan target is
    # then never declared missed before the period ends.
    final: bool = True
    # Which facts rows the population can lie in; set from the population below.
    reads: Reads = "finished"
    # Whether every item of the population finished before `t` (FINISHED, maybe narrowed by
    # more AND-ed conditions): such a figure is judged from the facts' end columns alone.
    finished_only: bool = False

    @property
    def reads_catalogue(self) -> bool:
        """Whether the figure asks the procedure catalogue (which procedures are eligible for
        full online service): only then does a request load it."""
        return "{full_online_eligible:" in f"{self.population} {self.numerator}"

    def numerator_sql(self) -> str:
        if self.summed is None:
            return f"countIf({self.numerator})"
        return f"toInt64(sumIf({self.summed}, {self.numerator}))"

    def weighted_numerator_sql(self) -> str:
        """The numerator over facts rows, each weighted by its `sign`."""
        if self.summed is None:
            return f"toInt64(sumIf(sign, {self.numerator}))"
        return f"toInt64(sumIf(sign * ({self.summed}), {self.numerator}))"


# Per-dossier conditions. `t` is the instant the figure is judged at: the period end, or now when
# the period has not ended, or the end of each bucket for stock figures.
RECEIVED = "received_at >= period_start AND received_at < period_end"
FINISHED = "end_at IS NOT NULL AND end_at >= period_start AND end_at < t AND due_at IS NOT NULL"
OPEN_AT_T = "received_at < t AND (end_at IS NULL OR end_at >= t) AND due_at IS NOT NULL"
PAID = "paid_at IS NOT NULL AND paid_at >= period_start AND paid_at < t"
FILED = "filed_at >= period_start AND filed_at < period_end AND deadline_day IS NOT NULL"
# The last local day the figure is judged on (t is an exclusive instant).
T_DAY = f"toDate(subtractMilliseconds(t, 1), '{TZ}')"
ANSWERED_IN_TIME = f"answered_at < t AND toDate(answered_at, '{TZ}') <= deadline_day"
ANSWERED_LATE = f"answered_at < t AND toDate(answered_at, '{TZ}') > deadline_day"
UNANSWERED = "(answered_at IS NULL OR answered_at >= t)"
LATE_AT_T = "timeliness = 'late'"
# A late dossier the apology rules judge (KH 7860 B.4.1): every one, or under a rule set whose
# apology population is the missed due dates (rules.Rules.apology_population) only one whose
# original due date passed (`due_missed`, judgment.APOLOGY_JUDGED): the letter apologises for a
# missed date, so a dossier late only by a second supplement request has none to apologise for.
APOLOGY_DUE = f"{LATE_AT_T} AND ({{apology_missed_due_only:UInt8}} = 0 OR due_missed)"
