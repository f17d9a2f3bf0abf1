"""Item rows from the facts (and from the parts the refolder has not folded yet), and the layers a
question adds to them in one SELECT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures import fact_sql, facts
from core.figures.metric_model import Entity
from core.figures.pruning import Split
from core.figures.reads import Read
from core.figures.sql_params import used

_DT = "DateTime64(3, 'UTC')"

# One judging instant, the judged_at parameter: a constant column (an ARRAY JOIN of one element
# would copy every row and its arrays).
SINGLE_T = ""

# What a figure reads of each dossier: its facts (core/figures/facts.py), with `sign` to sum
# instead of counting rows, and `t`, the instant it is judged at.
DOSSIER_COLUMNS = (
    "agency_code, dossier_id, procedure_code, domain_code, level, channel, received_at, due_at, "
    "fee_required, paper_result_required, e_result, resolved_at, returned_at, withdrawn_at, "
    "end_at, supplement_requests, supplement_receipts, end_requests, end_effective_at, "
    "end_late, end_late_day, end_early_day, "
    "late_notice_at, apologies, first_apology_at, paid_at, paid_online, paid_amount, "
    "digitized_at, last_rating, event_count, valid_from AS last_ingested_at"
)
_FEEDBACK_COLUMNS = (
    "agency_code, feedback_id, topic, filed_at, due_at, answered_at, published_at, last_rating, "
    "event_count, valid_from AS last_ingested_at"
)


def item_rows(
    entity: Entity,
    where: str,
    prune: str,
    read: Read,
    agencies: str = "1",
    split: Split | None = None,
) -> str:
    """One row per item version from the facts, plus the items the facts have not caught up
    with folded from their parts (core/figures/facts.py); sum `sign` instead of counting.

    `where` filters on the item's columns (agency, domain, level); `prune` limits what is read
    (prune_clause). As of an instant: the versions valid then and the parts ingested by then.
    `agencies` (a condition on agency_code alone) narrows which items are folded from their
    parts: nothing else may, since only the part holding the receipt has a domain or a level.
    With a `split`, only what the day counts do not hold: the facts from the cut on, and the
    correction for the delta's items (an empty string when there is nothing to read).
    """
    shape = facts.SHAPES[entity]
    columns = DOSSIER_COLUMNS if entity == "dossier" else _FEEDBACK_COLUMNS
    at = f"{{as_of:{_DT}}}" if read.as_of else facts.CURRENT_SQL
    if read.as_of:
        # a superseded version lives in the partition of minus the month it ended
        valid = f"valid_from <= {at} AND valid_to > {at}"
        prune = f"({prune}) OR part_month <= -toYYYYMM({at})"
    else:
        valid = f"valid_to = {facts.CURRENT_SQL}"
    stored = f"SELECT {columns}, sign FROM {shape.facts} WHERE {valid} AND "
    current: str | None = f"{stored}({prune}) AND {where}"
    if split is not None:
        current = None if split.fresh is None else f"{stored}({split.fresh}) AND {where}"
    if entity not in read.behind:
        return current or ""
    delta = fact_sql.delta_keys_sql(entity, at, agencies)
    key = f"(agency_code, {shape.key})"
    fold = fact_sql.at_instant_sql(shape, f"{key} IN ({delta})", at)
    branches = [] if current is None else [f"{current} AND {key} NOT IN ({delta})"]
    if split is not None:
        # what the day counts hold of these items, taken away again
        branches.append(
            f"SELECT {columns}, -sign AS sign FROM {shape.facts} WHERE {valid} AND ({prune}) "
            f"AND {split.stale} AND {where} AND {key} IN ({delta})"
        )
    branches.append(
        f"SELECT {columns}, toInt8(1) AS sign FROM ({fold}) WHERE ({prune}) AND {where}"
    )
    return "\nUNION ALL\n".join(branches)


@dataclass(frozen=True)
class Layer:
    """What a question adds to item rows: SELECT-list items (which may use each other's
    aliases) and a condition on the rows and those items."""

    items: str = ""
    where: str = ""


def layered(rows: str, layers: Sequence[Layer], t_source: str = SINGLE_T) -> str:
    """The rows with every layer's items, where every layer's condition holds, in one SELECT.

    Each layer used to be a `SELECT *, ... FROM (...)` of its own. The engine's analyser
    resolves every column of every such level before it plans, and five of them cost more
    to plan than reading a day's facts (measured at 10M: the index's branch for the facts since
    the cut, 43 ms layered, 30 in one SELECT, p50 of 25). ClickHouse lets an item use an alias
    defined anywhere in the same list, so the layers' order does not matter for their items.
    `t_source`: an ARRAY JOIN of judging instants, or SINGLE_T."""
    items = "".join(f", {layer.items}" for layer in layers if layer.items)
    conditions = " AND ".join(f"({layer.where})" for layer in layers if layer.where)
    where = f" WHERE {conditions}" if conditions else ""
    return f"SELECT *{items} FROM ({rows}) {t_source}{where}"


def with_t(t_source: str) -> Layer:
    """The period's bounds and the judging instant `t`: from `t_source` (an ARRAY JOIN of
    bucket ends), or the judged_at parameter (SINGLE_T)."""
    t = "t" if t_source else f"{{judged_at:{_DT}}} AS t"
    return Layer(f"{t}, {{period_start:{_DT}}} AS period_start, {{period_end:{_DT}}} AS period_end")


def rows_with_t(rows: str, t_source: str) -> str:
    """The rows with the period's bounds and the judging instant `t` (with_t)."""
    return layered(rows, [with_t(t_source)], t_source)


def named_rows(client: Client, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """A query's rows as dicts: a read to hand to storage.pool.run_all."""
    return list(client.query(sql, parameters=used(sql, params)).named_results())
