"""The feedback rows' SQL: each version with its answer deadline (reference §5)."""

from __future__ import annotations

from core.figures.reads import Read
from core.figures.rows import SINGLE_T, Layer, item_rows, layered, with_t
from core.figures.sql_params import first_index, working_day
from core.zone import TZ

_FEEDBACK_JUDGED = f"""
    toDate(filed_at, '{TZ}') AS filed_day,
    {first_index("addDays(filed_day, 1)")} AS filed_first,
    -- Reference §5: answer within N working days of filing (holidays skipped); a rule set may
    -- trust the source system's due_at instead.
    if({{feedback_deadline_source:UInt8}} = 1, toDate(due_at, '{TZ}'),
       {working_day("filed_day", "filed_first", "{feedback_working_days:Int32} - 1")})
       AS deadline_day"""


def feedback_rows(where: str, *, read: Read, prune: str, agencies: str = "1") -> str:
    """One row per feedback version with its answer deadline (`deadline_day`) and judging
    instant `t` (the judged_at parameter); sum `sign` instead of counting rows."""
    rows = item_rows("feedback", where, prune, read, agencies)
    return layered(rows, [with_t(SINGLE_T), Layer(_FEEDBACK_JUDGED)])
