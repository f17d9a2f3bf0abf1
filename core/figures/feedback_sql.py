"""The feedback rows' SQL: each version with its answer deadline (reference §5)."""

from __future__ import annotations

from core.figures.reads import Read
from core.figures.rows import SINGLE_T, Layer, item_rows, layered, with_t
from core.figures.sql_params import FILED_DEADLINE
from core.zone import TZ

_FEEDBACK_JUDGED = f"""
    toDate(filed_at, '{TZ}') AS filed_day,
    -- Reference §5: answer within N working days of filing (holidays skipped, the day looked
    -- up in the period's deadlines: sql_params.FILED_DEADLINE); a rule set may trust the
    -- source system's due_at instead.
    if({{feedback_deadline_source:UInt8}} = 1, toDate(due_at, '{TZ}'), {FILED_DEADLINE})
       AS deadline_day"""


def feedback_rows(where: str, *, read: Read, prune: str, agencies: str = "1") -> str:
    """One row per feedback version with its answer deadline (`deadline_day`) and judging
    instant `t` (the judged_at parameter); sum `sign` instead of counting rows."""
    rows = item_rows("feedback", where, prune, read, agencies)
    return layered(rows, [with_t(SINGLE_T), Layer(_FEEDBACK_JUDGED)])
