"""The figures' read model: every dossier and feedback item folded once, read by period.

Before this, every figure re-folded every dossier ever stored (a GROUP BY over the whole state
table on each read: 25 s and 11 GB at 10 million dossiers). Now:

1. `*_parts` (migration 0018): a materialized view folds what each insert adds to an item into
   one row per (item, ingested_at), with idempotent aggregates, so duplicates and any arrival
   order change nothing. `folded_at` says when the row was written.
2. The refolder (`Refolder.step`, run by the metrics service) takes the items whose parts were
   written since its watermark and folds each into its *facts*: one row per item and ingest
   version (the state as the store knew it from `valid_from` until `valid_to`), with what every
   judgment needs that does not depend on the judging instant precomputed (when it finished, its
   effective finishing time after supplement pauses, its first payment, ...). It writes the
   difference between the facts it computes and the facts stored, as added and cancelled rows
   (`sign`), so a step is idempotent and repairs whatever an interrupted step left behind.
3. A figure reads the facts of the rows its period can touch (partition `part_month`, skip
   indexes on the other anchors), plus a *delta*: items with parts newer than the watermark
   are folded from their parts at question time. So answers are as fresh as the parts, and an
   as-of answer is exact at any instant: the facts version valid then, or the parts up to then.

The fold is written once, here (`_DOSSIER_FOLD`, `_FEEDBACK_FOLD` and what is derived from them),
and rendered in core/figures/fact_sql.py: the refolder (core/figures/refolder.py) and `motcua
replay` as a running fold per version (`versions_sql`), a question's delta as the fold at one
instant (`at_instant_sql`); the per-insert aggregates are the view's in migration 0018.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from core.zone import TZ

log = logging.getLogger(__name__)

Entity = Literal["dossier", "feedback"]
ENTITIES: tuple[Entity, ...] = ("dossier", "feedback")

# valid_to of a current row: the end of what DateTime64(3) can hold, a day inside it.
CURRENT = datetime(2299, 12, 31, tzinfo=UTC)


CURRENT_SQL = "toDateTime64('2299-12-31 00:00:00', 3, 'UTC')"
_EPOCH = "toDateTime64(0, 3, 'UTC')"
EPOCH = datetime.fromtimestamp(0, UTC)


# part_month of an open dossier (or of feedback with no filing time): above every real month.
OPEN_MONTH = 999999


# How each part column folds: max, min, a set union, or an exact distinct count (kept as its
# state until the last step). One list per entity, rendered three ways below: merging the parts
# of one insert instant, the running fold over an item's instants (one facts version each), and
# the fold at one instant (a question's delta).
Fold = tuple[tuple[str, str], ...]

_DOSSIER_FOLD: Fold = (
    ("procedure_code", "max"),
    ("domain_code", "max"),
    ("level", "max"),
    ("channel", "max"),
    ("received_at", "min"),
    ("due_at", "min"),
    ("fee_required", "max"),
    ("paper_result_required", "max"),
    ("e_result", "max"),
    ("outcome", "max"),
    ("resolved_at", "min"),
    ("returned_at", "min"),
    ("withdrawn_at", "min"),
    ("supplement_requests", "groupUniqArrayArray"),
    ("supplement_receipts", "groupUniqArrayArray"),
    ("late_notice_at", "min"),
    ("apologies", "groupUniqArrayArray"),
    ("payments", "groupUniqArrayArray"),
    ("digitized_at", "min"),
    ("last_rating", "max"),
    ("event_count", "uniqExact"),
    ("last_event_at", "max"),
)

_FEEDBACK_FOLD: Fold = (
    ("filed_at", "min"),
    ("topic", "max"),
    ("due_at", "min"),
    ("answered_at", "min"),
    ("published_at", "min"),
    ("last_rating", "max"),
    ("event_count", "uniqExact"),
    ("last_event_at", "max"),
)


@dataclass(frozen=True)
class Shape:
    """How one entity's parts fold into facts."""

    entity: Entity
    key: str  # the item id column
    parts: str
    facts: str
    fold: Fold
    derived: str  # SELECT list over the folded columns: the facts' own columns
    month: str  # part_month of a current row (a history row: minus the month valid_to ends)
    columns: tuple[str, ...]  # the facts' content columns, in table order
    # Tables materialized views fill from the facts (dossier_days, and dossier_months from
    # those), in that order: emptied with them, reconciled with them one after the other.
    counts: tuple[str, ...] = ()


# Judged at its own end (withdrawal included: a rule set that does not count withdrawals leaves
# withdrawn-only dossiers out altogether, so every dossier it keeps has this same end).
# Reference §2: the k-th supplement request pairs with the k-th resubmission, by time.
_DOSSIER_DERIVED = f"""
    procedure_code, domain_code, level, channel, received_at, due_at, fee_required,
    paper_result_required, e_result, outcome, resolved_at, returned_at, withdrawn_at,
    coalesce(resolved_at, returned_at, withdrawn_at) AS end_at,
    arrayMap(x -> x.1, arraySort(supplement_requests)) AS requests_all,
    arrayMap(x -> x.1, arraySort(supplement_receipts)) AS receipts_all,
    arraySort(apologies) AS apologies_all,
    arraySort(payments) AS payments_all,
    ifNull(end_at, {_EPOCH}) AS end_or_epoch,
    arrayFilter(x -> x <= end_or_epoch, requests_all) AS end_req,
    arrayFilter(x -> x <= end_or_epoch, receipts_all) AS end_rec,
    least(length(end_req), length(end_rec)) AS end_pairs,
    toUInt16(if(end_at IS NULL, 0, length(end_req))) AS end_requests,
    if(end_at IS NULL, NULL, subtractMilliseconds(
        if(length(end_req) > end_pairs, end_req[end_pairs + 1], end_or_epoch),
        arraySum(arrayMap(i -> greatest(0, dateDiff('millisecond', end_req[i], end_rec[i])),
                          range(1, end_pairs + 1))))) AS end_effective_at,
    -- §2 at its end, both ways the rule sets draw the boundary (queries.py reads these)
    toUInt8(ifNull(end_effective_at > due_at, 0)) AS end_late,
    toUInt8(ifNull(toDate(end_effective_at, '{TZ}') > toDate(due_at, '{TZ}'), 0)) AS end_late_day,
    toUInt8(ifNull(toDate(end_effective_at, '{TZ}') < toDate(due_at, '{TZ}'), 0))
        AS end_early_day,
    late_notice_at,
    toUInt16(length(apologies_all)) AS apologies_n,
    if(length(apologies_all) > 0, apologies_all[1].1, NULL) AS first_apology_at,
    if(length(payments_all) > 0, payments_all[1].1, NULL) AS paid_at,
    toUInt8(arrayExists(p -> p.2 = 'online', payments_all)) AS paid_online,
    toUInt64(arraySum(p -> p.3, payments_all)) AS paid_amount,
    digitized_at, last_rating, toUInt64(event_count) AS event_count, last_event_at
"""

_FEEDBACK_DERIVED = """
    filed_at, topic, due_at, answered_at, published_at, last_rating,
    toUInt64(event_count) AS event_count, last_event_at
"""

SHAPES: dict[Entity, Shape] = {
    "dossier": Shape(
        entity="dossier",
        key="dossier_id",
        parts="dossier_parts",
        facts="dossier_facts",
        fold=_DOSSIER_FOLD,
        derived=_DOSSIER_DERIVED,
        # the month of its last dated step once finished (its end, receipt, first payment or
        # digitisation, whichever came last), so that a question about any of them since some
        # instant reads only the partitions from that month on; open: OPEN_MONTH
        month=(
            f"if(end_at IS NULL, {OPEN_MONTH}, toYYYYMM(greatest(end_at, "
            "ifNull(received_at, end_at), ifNull(paid_at, end_at), ifNull(digitized_at, end_at))))"
        ),
        columns=(
            "procedure_code",
            "domain_code",
            "level",
            "channel",
            "received_at",
            "due_at",
            "fee_required",
            "paper_result_required",
            "e_result",
            "outcome",
            "resolved_at",
            "returned_at",
            "withdrawn_at",
            "end_at",
            "supplement_requests",
            "supplement_receipts",
            "end_requests",
            "end_effective_at",
            "end_late",
            "end_late_day",
            "end_early_day",
            "late_notice_at",
            "apologies",
            "first_apology_at",
            "paid_at",
            "paid_online",
            "paid_amount",
            "digitized_at",
            "last_rating",
            "event_count",
            "last_event_at",
        ),
        counts=("dossier_days", "dossier_months"),
    ),
    "feedback": Shape(
        entity="feedback",
        key="feedback_id",
        parts="feedback_parts",
        facts="feedback_facts",
        fold=_FEEDBACK_FOLD,
        derived=_FEEDBACK_DERIVED,
        month="ifNull(toYYYYMM(filed_at), 0)",
        columns=(
            "filed_at",
            "topic",
            "due_at",
            "answered_at",
            "published_at",
            "last_rating",
            "event_count",
            "last_event_at",
        ),
    ),
}

# The facts' columns whose derived name differs (the derived SELECT keeps the parts' names
