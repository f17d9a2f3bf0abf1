"""The dossier populations' SQL the figures share: judged at an instant, unjudged, open at the
judging instant, and several flows beside their day counts in one scan."""

from __future__ import annotations

from collections.abc import Sequence

from core.figures import days, fact_sql, facts
from core.figures.judgment import (
    APOLOGY_JUDGED,
    COUNTED,
    DOSSIER_JUDGED,
    END_TIMELINESS,
    FINISHED_JUDGED,
    OPEN_LATE,
    open_clock,
)
from core.figures.metric_model import Reads
from core.figures.pruning import Split
from core.figures.reads import Read
from core.figures.rows import (
    DOSSIER_COLUMNS,
    SINGLE_T,
    Layer,
    item_rows,
    layered,
    with_t,
)

_DT = "DateTime64(3, 'UTC')"


def judged_dossiers(
    where: str,
    t_source: str,
    *,
    read: Read,
    prune: str,
    agencies: str = "1",
    apology: bool = False,
    split: Split | None = None,
    finished: bool = False,
    then: Sequence[Layer] = (),
) -> str:
    """One row per dossier version (and judging instant `t`) with its §2 timeliness at `t`;
    sum `sign` instead of counting rows. `finished`: the caller keeps only rows finished
    before `t` (end_at < t), which are judged from their end columns alone. `then`: the
    caller's own layers, in the same SELECT (layered).

    Parameters the SQL expects: period_start, period_end, the rule parameters, the ones
    `t_source` names (e.g. judged_at), `as_of` when as_of is set, and those of `where`.
    """
    judged = [Layer(FINISHED_JUDGED if finished else DOSSIER_JUDGED)]
    if apology:
        judged.append(Layer(APOLOGY_JUDGED))
    return plain_dossiers(
        where,
        t_source,
        read=read,
        prune=prune,
        agencies=agencies,
        split=split,
        then=[*judged, *then],
    )


def plain_dossiers(
    where: str,
    t_source: str,
    *,
    read: Read,
    prune: str,
    agencies: str = "1",
    split: Split | None = None,
    then: Sequence[Layer] = (),
) -> str:
    """judged_dossiers without the judgment, for counts that need none (intake, payments)."""
    rows = item_rows("dossier", where, prune, read, agencies, split)
    if not rows:
        return ""
    return layered(rows, [_COUNTED, with_t(t_source), *then], t_source)


_COUNTED = Layer(where=COUNTED)


def at_t_dossiers(
    where: str, *, read: Read, prune: str, agencies: str = "1", received_after: bool = False
) -> str:
    """The dossiers (with a due date) open at the judging instant `t` (the judged_at parameter),
    a row per dossier version, read, filtered and judged in one layer: `overdue` says whether
    one is late at `t` (§2, as the full judgment above decides it for an open dossier). Sum
    `sign` instead of counting rows.

    `received_after`: also the dossiers finished in the period but received after `t` (an
    integrator may date an end before its receipt), with `open` false and `end_timeliness`,
    their judgment at their end.

    The full judgment is written for any population and any number of instants `t`; planning
    its layers cost several times reading and judging a province's open dossiers."""
    rows = item_rows("dossier", where, prune, read, agencies)
    if not rows:
        return ""
    t = f"{{judged_at:{_DT}}}"
    population = f"received_at < {t} AND (end_at IS NULL OR end_at >= {t})"
    if received_after:
        population += (
            f" OR end_at >= {{period_start:{_DT}}} AND end_at < {t} AND received_at >= {t}"
        )
    return f"""
SELECT *, received_at < {t} AS open, {open_clock(t)},
    open AND {OPEN_LATE} AS overdue, {END_TIMELINESS} AS end_timeliness
FROM ({rows})
WHERE due_at IS NOT NULL AND ({population}) AND {COUNTED}
"""


def flow_facts(
    splits: dict[Reads, Split],
    where: str,
    *,
    read: Read,
    prunes: dict[Reads, str],
    then: Sequence[Layer] = (),
) -> str:
    """What several flows read of the facts beside their day counts, in one scan instead of
    one per flow (item_rows with a split, for each): the rows from the cut on, and for the
    delta's items their stored rows taken away again and their fold added. The rows are judged
    at their end (a flow keeps its finished ones only) and say by `side` which of the three they
    are, so that a flow keeps (flow_side) a row from the cut on only if its own anchor is from
    the cut on, and a taken-away row only if the day counts held it (its anchor before the cut).

    Live figures only (the day counts are never read as of an instant); `prunes`: each flow's
    prune_clause over the period; `then`: the caller's own layers (layered)."""
    shape = facts.SHAPES["dossier"]
    stored = (
        f"SELECT {DOSSIER_COLUMNS}, {{sign}} AS sign, toInt8({{side}}) AS side "
        f"FROM {shape.facts} WHERE valid_to = {facts.CURRENT_SQL} AND "
    )
    fresh = " OR ".join(f"({s.fresh})" for s in splits.values() if s.fresh is not None)
    branches = []
    behind = "dossier" in read.behind
    delta = fact_sql.delta_keys_sql("dossier", facts.CURRENT_SQL, where) if behind else ""
    key = f"(agency_code, {shape.key})"
    if fresh:
        mine = f" AND {key} NOT IN ({delta})" if behind else ""
        current = stored.format(sign="sign", side=0)
        branches.append(f"{current}({fresh}) AND {where}{mine}")
    if behind:
        held = " OR ".join(f"({prunes[k]}) AND {s.stale}" for k, s in splits.items())
        taken = stored.format(sign="-sign", side=-1)
        branches.append(f"{taken}({held}) AND {where} AND {key} IN ({delta})")
        fold = fact_sql.at_instant_sql(shape, f"{key} IN ({delta})", facts.CURRENT_SQL)
        any_prune = " OR ".join(f"({prunes[k]})" for k in splits)
        branches.append(
            f"SELECT {DOSSIER_COLUMNS}, toInt8(1) AS sign, toInt8(1) AS side FROM ({fold}) "
            f"WHERE ({any_prune}) AND {where}"
        )
    if not branches:
        return ""
    layers = [_COUNTED, with_t(SINGLE_T), Layer(FINISHED_JUDGED), *then]
    return layered("\nUNION ALL\n".join(branches), layers)


def flow_side(kind: Reads) -> str:
    """Whether a flow_facts row counts for the flow `kind` (see there)."""
    anchor = days.DAY_ANCHORS[kind]
    cut = f"{{cut:{_DT}}}"
    return f"multiIf(side = 1, 1, side = 0, {anchor} >= {cut}, {anchor} < {cut})"
