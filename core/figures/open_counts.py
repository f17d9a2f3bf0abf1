"""Dossiers open at an instant `t`, judged from the open counts (`dossier_open`, migration
0032) where a row of theirs would add nothing, and from the facts where it would.

Biểu II.06a (columns 12-13) and the 766 index judge every dossier open at `t`. The open counts
hold the dossiers open now that have a receipt, a due date and no supplement request: at `t`
such a dossier's clock shows `t` (reference §2), so it is open at `t` when received before it
and overdue when `t` is past its due date. The counts keep the local days of both, which
decides it for a dossier received before `t`'s day whose due day is not `t`'s day, or is and
`t` is a local midnight (a past period's end): due before `t`'s day is late by the instant and
by the day alike, due on or after it is neither. The rest (received on `t`'s day, due on it when
`t` is not a midnight, any supplement request, finished since `t`, the delta's items) are read
from the facts and judged one by one, as before (dossier_sql.at_t_dossiers with the Split).

A province's open dossiers pile up over the years (some are never finished): judged one row
at a time they made these figures grow with the history. Live figures only: as of an instant
the facts of then are read, and while the counts guard is dirty the facts alone.

The counts and the facts are two reads, and a refolder write between them (a dossier
finishing) could count a dossier in both or neither: an answer that read the counts is asked
again when a refolder write overlapped it (reads.consistently with `always`).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from core.figures.pruning import Split
from core.zone import VN

_DT = "DateTime64(3, 'UTC')"

# The facts rows the open counts hold at `t` (parameter open_start: the local midnight that
# begins `t`'s day), and those of them due on that day (open_start..open_next), which the
# counts cannot judge when `t` is not a midnight. Instants, not local days: a row's local day
# costs a conversion per row, and planning the conversions cost more than the rows.
_HELD = (
    f"end_at IS NULL AND due_at IS NOT NULL AND received_at < {{open_start:{_DT}}} "
    "AND empty(supplement_requests)"
)
_DUE_ON_THE_DAY = f"due_at >= {{open_start:{_DT}}} AND due_at < {{open_next:{_DT}}}"

# Which rows of the counts are overdue at `t`.
OVERDUE = "due_day < {open_day:Date32}"


def split(prune: str, t: datetime, params: dict[str, Any], where: str) -> tuple[Split, str]:
    """The facts rows of the open population (`prune`: its prune_clause) the counts do not
    hold (`fresh`), and those they do (`stale`: taken away again for the delta's items, which
    are folded from their parts); and the counts' rows that hold them, narrowed by `where`
    (agency_code, and any of domain_code and level), as a table. Sets the parameters
    open_day, open_start and, when `t` is not a midnight, open_next."""
    day = t.astimezone(VN).date()
    start = datetime.combine(day, time(), VN)
    params.update(open_day=day, open_start=start)
    held, counted = _HELD, "day < {open_day:Date32}"
    if t != start:
        params["open_next"] = datetime.combine(day + timedelta(days=1), time(), VN)
        held += f" AND NOT ({_DUE_ON_THE_DAY})"
        counted += " AND due_day != {open_day:Date32}"
    source = f"(SELECT * FROM dossier_open WHERE {counted} AND {where})"
    return Split(fresh=f"({prune}) AND NOT ({held})", stale=held), source
