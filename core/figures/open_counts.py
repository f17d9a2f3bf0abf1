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

from datetime import datetime, time
from typing import Any

from core.figures.pruning import Split
from core.zone import TZ, VN

# The facts rows the open counts hold at `t` (parameters open_day: `t`'s local day;
# open_exact_due: 1 unless `t` is a local midnight).
HELD = (
    "end_at IS NULL AND due_at IS NOT NULL AND received_at IS NOT NULL "
    "AND empty(supplement_requests) "
    f"AND toDate(received_at, '{TZ}') < {{open_day:Date32}} "
    f"AND NOT ({{open_exact_due:UInt8}} = 1 AND toDate(due_at, '{TZ}') = {{open_day:Date32}})"
)

# The same rows in the counts, and which of them are overdue at `t`.
_COUNTED = (
    "day < {open_day:Date32} AND NOT ({open_exact_due:UInt8} = 1 AND due_day = {open_day:Date32})"
)
OVERDUE = "due_day < {open_day:Date32}"


def split(prune: str, t: datetime, params: dict[str, Any]) -> Split:
    """The facts rows of the open population (`prune`: its prune_clause) the counts do not
    hold (`fresh`), and those they do (`stale`: taken away again for the delta's items, which
    are folded from their parts). Sets the parameters open_day and open_exact_due."""
    day = t.astimezone(VN).date()
    midnight = datetime.combine(day, time(), VN)
    params.update(open_day=day, open_exact_due=int(t != midnight))
    return Split(fresh=f"({prune}) AND NOT ({HELD})", stale=HELD)


def source(where: str) -> str:
    """The open counts' rows a question at `t` reads, narrowed by `where` (agency_code, and any
    of domain_code and level)."""
    return f"(SELECT * FROM dossier_open WHERE {_COUNTED} AND {where})"
