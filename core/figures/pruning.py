"""Which facts partitions and rows a question can touch (prune_clause), and where a live
question stops reading the day counts and reads the facts (Split, day_split)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from core.figures import days
from core.figures.metric_model import Reads
from core.figures.periods import Period, next_month
from core.zone import VN

_DT = "DateTime64(3, 'UTC')"


# Which facts rows a question can touch: a finished dossier's current facts lie in the partition
# of the month of its last dated step (end, receipt, first payment, digitisation; open ones in
# OPEN_MONTH), so a question about dossiers finished, received or paid since some instant, or
# open at it, skips every month before it.


def part_month_of(instant: datetime) -> int:
    """The facts partition (part_month) of the UTC month holding `instant`."""
    utc = instant.astimezone(UTC)
    return utc.year * 100 + utc.month


def prune_clause(
    kind: Reads, start: datetime, end: datetime, t_min: datetime, start_param: str = "period_start"
) -> str:
    """A condition on facts rows that every row of the population meets (so it changes no
    answer) and that the engine can skip partitions and granules by. `t_min` is the earliest
    instant the figure is judged at, `end` the latest; `start_param` names the parameter that
    holds `start`."""
    since = f"{{{start_param}:{_DT}}}"
    if kind == "finished":
        return f"part_month >= {part_month_of(start):d} AND end_at >= {since}"
    if kind == "open":
        return f"part_month >= {part_month_of(min(t_min, end)):d}"
    if kind == "finished_or_open":
        return f"part_month >= {part_month_of(min(start, t_min)):d}"
    if kind == "received":
        return (
            f"part_month >= {part_month_of(start):d} AND received_at >= {since} "
            f"AND received_at < {{period_end:{_DT}}}"
        )
    if kind == "paid":
        return f"part_month >= {part_month_of(start):d} AND paid_at >= {since}"
    return (
        f"part_month >= {part_month_of(start):d} AND part_month <= {part_month_of(end):d} "
        f"AND filed_at >= {since} AND filed_at < {{period_end:{_DT}}}"
    )


@dataclass(frozen=True)
class Split:
    """Where the day counts (core/figures/days.py) end and the facts take over: `fresh`
    selects (and prunes to) the facts rows from the cut on, None when the figure is judged
    before it; `stale` is the anchor before the cut, whose rows of the delta's items the counts
    hold and the delta's fold replaces."""

    fresh: str | None
    stale: str
    # whether whole months lie in the counted days, read from the month counts, and whether
    # days lie around them (days.source)
    months: bool = False
    edges: bool = True


def day_split(kind: Reads, period: Period, now: datetime, params: dict[str, Any]) -> Split | None:
    """Where a question stops reading the day counts of `kind` (core/figures/days.py): at
    the start of the day it is judged on (today, or the day after a period that has ended).
    Sets the parameters first_day, cut_day, cut, first_month and cut_month; None when no
    whole day comes before it."""
    t = min(period.end, now)
    cut_day = t.astimezone(VN).date()
    if cut_day <= period.first_day:
        return None
    cut = datetime.combine(cut_day, time(), VN).astimezone(UTC)
    first = period.first_day
    # the months wholly inside first_day..cut_day: from the first month that starts on or after
    # the first day, to the month the cut falls in
    first_month = first if first.day == 1 else next_month(first)
    cut_month = cut_day.replace(day=1)
    params.update(
        first_day=first, cut_day=cut_day, cut=cut, first_month=first_month, cut_month=cut_month
    )
    # from the cut on, the facts: up to the judging instant, or the period's end for receipts
    # (a dossier received after the judging instant but within the period is counted)
    fresh = None
    if cut < period.end:
        fresh = prune_clause(kind, cut, period.end, t, start_param="cut")
    edges = first < first_month or cut_day > cut_month
    return Split(fresh, f"{days.DAY_ANCHORS[kind]} < {{cut:{_DT}}}", first_month < cut_month, edges)
