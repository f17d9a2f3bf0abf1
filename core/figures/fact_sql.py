"""The fold of core/figures/facts.py rendered as SQL: every version of an item (the refolder,
`motcua replay`), an item at one instant (a question's delta), the difference between the fold
and the stored facts, and the scalar subqueries of the refolder's progress and counts guard."""

from __future__ import annotations

from core.figures.facts import CURRENT_SQL, SHAPES, Entity, Shape

_DT = "DateTime64(3, 'UTC')"


_FACT_NAMES = {
    "supplement_requests": "requests_all",
    "supplement_receipts": "receipts_all",
    "apologies": "apologies_n",
}


def _merge(column: str, how: str) -> str:
    """Parts of one item and instant into one row (duplicates of a retried insert)."""
    if how == "uniqExact":
        return f"uniqExactMergeState({column}) AS {column}"
    return f"{how}({column}) AS {column}"


def _final(column: str, how: str, over: str = "") -> str:
    """The fold of an item's rows: over a window (each instant's running state) or grouped."""
    if how == "uniqExact":
        return f"uniqExactMerge({column}){over} AS {column}"
    return f"{how}({column}){over} AS {column}"


KEY_COLUMNS = ("agency_code", "item_id", "valid_from", "valid_to", "part_month", "version")


def _facts_select(shape: Shape, folded: str) -> str:
    """Facts rows (key columns, then content) from rows of folded columns with valid_from and
    valid_to."""
    content = ", ".join(f"{_FACT_NAMES.get(c, c)} AS {c}" for c in shape.columns)
    names = ", ".join(shape.columns)
    return f"""
SELECT agency_code, {shape.key}, valid_from, valid_to,
    if(valid_to = {CURRENT_SQL}, {shape.month}, -toYYYYMM(valid_to)) AS part_month,
    -- one tuple: a hash of a NULL argument is NULL, a NULL inside a tuple is hashed as NULL
    cityHash64(tuple(agency_code, {shape.key}, valid_from, valid_to, {names})) AS version,
    {names}
FROM (
    SELECT agency_code, {shape.key}, valid_from, valid_to, {content}
    FROM (SELECT agency_code, {shape.key}, valid_from, valid_to, {shape.derived} FROM ({folded}))
)
"""


def versions_sql(shape: Shape, where: str) -> str:
    """Every version of the items `where` selects: one per ingest instant of their parts, each
    the running fold of the parts up to it and holding until the next (the last one current).
    One pass in the table's own order, whatever the number of versions."""
    merged = ", ".join(_merge(c, how) for c, how in shape.fold)
    item = f"PARTITION BY agency_code, {shape.key} ORDER BY ingested_at"
    running = ", ".join(_final(c, how, " OVER running") for c, how in shape.fold)
    folded = f"""
SELECT agency_code, {shape.key}, ingested_at AS valid_from,
    leadInFrame(ingested_at, 1, {CURRENT_SQL})
        OVER ({item} ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS valid_to,
    {running}
FROM (
    SELECT agency_code, {shape.key}, ingested_at, {merged}
    FROM {shape.parts} WHERE {where}
    GROUP BY agency_code, {shape.key}, ingested_at
)
WINDOW running AS ({item} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""
    return _facts_select(shape, folded)


def at_instant_sql(shape: Shape, where: str, bound: str) -> str:
    """The items `where` selects, folded as the store knew them at `bound` (a SQL instant): the
    delta of a live or as-of question. The same fold as versions_sql, at one instant."""
    grouped = ", ".join(_final(c, how) for c, how in shape.fold)
    folded = f"""
SELECT agency_code, {shape.key}, max(ingested_at) AS valid_from, {CURRENT_SQL} AS valid_to,
    {grouped}
FROM {shape.parts} WHERE ({where}) AND ingested_at <= {bound}
GROUP BY agency_code, {shape.key}
"""
    return _facts_select(shape, folded)


def difference_sql(shape: Shape, wanted: str) -> str:
    """What to write so that the stored facts of the items `wanted` selects (agency_code and
    the item id) equal the fold of their parts: per version identity (agency, item, valid_from,
    valid_to, version, the last a hash of the content) `change` = 1 if the fold has it, minus
    the signs stored. A positive change is that many added rows, a negative one that many
    cancellations: a leftover, a stray cancel or a row written twice by a step cut short all
    come out right, and a repeat finds nothing to write."""
    ids = f"{shape.key} IN (SELECT {shape.key} FROM ({wanted}))"
    mine = f"(agency_code, {shape.key}) IN ({wanted})"
    content = ", ".join(shape.columns)
    kept = ", ".join(f"any({c}) AS {c}" for c in shape.columns)
    return f"""
SELECT agency_code, {shape.key}, valid_from, valid_to, any(part_month) AS part_month, version,
    {kept}, sum(w) AS change
FROM (
    SELECT *, toInt64(1) AS w FROM ({versions_sql(shape, ids)}) WHERE {mine}
    UNION ALL
    SELECT agency_code, {shape.key}, valid_from, valid_to, part_month, version, {content},
        -toInt64(sign) AS w
    FROM {shape.facts} WHERE {ids} AND {mine}
)
GROUP BY agency_code, {shape.key}, valid_from, valid_to, version
HAVING change != 0
"""


def counts_dirty_sql(entity: Entity) -> str:
    """Scalar subquery: 1 when the entity's day counts may disagree with its facts."""
    return f"(SELECT ifNull(argMax(dirty, seq), 0) FROM counts_guard WHERE entity = '{entity}')"


def watermark_sql(entity: Entity) -> str:
    """Scalar subquery: every part folded at or before this instant is in the facts."""
    return (
        "(SELECT ifNull(max(watermark), toDateTime64(0, 3, 'UTC')) FROM facts_progress "
        f"WHERE entity = '{entity}')"
    )


def delta_keys_sql(entity: Entity, bound: str, agencies: str = "1") -> str:
    """Items with parts the refolder has not taken yet that were ingested by `bound`: their
    facts may be behind, so a question folds them from their parts instead."""
    shape = SHAPES[entity]
    return (
        f"SELECT DISTINCT agency_code, {shape.key} FROM {shape.parts} "
        f"WHERE folded_at > {watermark_sql(entity)} AND ingested_at <= {bound} AND {agencies}"
    )
