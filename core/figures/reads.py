"""How a question reads the store (Read: live or as of an instant, which entities the refolder
is behind on, whether the day counts agree with the facts), and asking again when a refolder
write overlapped an answer (consistently)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client

from core.figures import fact_sql, facts
from core.figures.metric_model import Entity

# How far the parts were folded and the facts have caught up, per entity, and the day counts'
# guard: one plain scan of each small table in one query. (Scalar subqueries, one per table,
# cost the engine more to plan than to run: 8-10 ms of every request at 10M, this 4.)
_PROGRESS_SQL = """
SELECT 'folded' AS kind, entity, max(folded_at) AS at, toUInt64(0) AS seq, toUInt8(0) AS dirty
FROM parts_progress GROUP BY entity
UNION ALL
SELECT 'caught_up', entity, max(watermark), 0, 0 FROM facts_progress GROUP BY entity
UNION ALL
SELECT 'guard', entity, toDateTime64(0, 3, 'UTC'), max(seq), argMax(dirty, seq)
FROM counts_guard WHERE entity = 'dossier' GROUP BY entity
"""


def _after(
    rows: dict[tuple[str, str], list[Any]], later: tuple[str, str], than: tuple[str, str]
) -> bool:
    """Whether the instant of row `later` is after that of row `than`, a missing row being the
    epoch (as max() of no rows is): an entity with nothing folded is not behind, and neither is
    one whose parts' view has seen only inserts without it (0021's views then write the epoch)."""
    if later not in rows:
        return False
    at = rows[later][0]
    return bool(at > (rows[than][0] if than in rows else datetime(1970, 1, 1, tzinfo=at.tzinfo)))


T = TypeVar("T")


@dataclass(frozen=True)
class Read:
    """How a question reads the store: live or as of an instant (the `as_of` parameter), and
    which entities have parts the refolder has not taken yet (`behind`), whose items are then
    folded from their parts. Read.of(client, as_of) asks the store."""

    as_of: bool = False
    behind: frozenset[Entity] = frozenset({"dossier", "feedback"})
    # Whether the day counts agree with the facts (not while a refolder write was cut short and
    # not yet reconciled: fact_sql.counts_dirty_sql); if not, figures read the facts alone.
    counts: bool = True
    # The counts guard's newest mark when this was read (settled).
    counts_seq: int = 0

    @classmethod
    def of(cls, client: Client, as_of: datetime | None) -> Read:
        # Behind: a part folded after the refolder's watermark (parts_progress, migration
        # 0021). As of an instant, such a part may have been ingested after it; folding its
        # item from the parts up to that instant is then exact all the same.
        rows = {
            (kind, entity): row for kind, entity, *row in client.query(_PROGRESS_SQL).result_rows
        }
        behind = frozenset(
            e for e in facts.ENTITIES if _after(rows, ("folded", e), ("caught_up", e))
        )
        _, seq, dirty = rows.get(("guard", "dossier"), (None, 0, 0))
        return cls(as_of is not None, behind, counts=not dirty, counts_seq=int(seq))

    def settled(self, client: Client) -> bool:
        """Whether an answer read this way is exact: no refolder write began while it ran.

        A live question that reads the day counts and folds items from their parts also takes
        those items' stored facts away from the counts. One query does not read the tables at
        one instant: a refolder write landing between its read of the counts and its read of
        the facts takes an item away that the counts never held (the test of as-of answers saw
        three new dossiers vanish from a live figure once). The refolder marks the guard before
        it writes, so a changed mark means the answer must be asked again."""
        if self.as_of or not self.counts or "dossier" not in self.behind:
            return True
        seq = client.query(f"SELECT {fact_sql.counts_seq_sql('dossier')}").result_rows[0][0]
        return int(seq) == self.counts_seq

    @classmethod
    def folded(cls, client: Client) -> Read:
        """The live facts alone, as far as the refolder has folded them: no delta (the metrics
        service's snapshots and plan evaluations, which run beside the refolder)."""
        dirty = client.query(f"SELECT {fact_sql.counts_dirty_sql('dossier')}").result_rows[0][0]
        return cls(behind=frozenset(), counts=not dirty)


def consistently(
    client: Client, as_of: datetime | None, read: Read | None, ask: Callable[[Read], T]
) -> T:
    """`ask` under `read` (or Read.of), again while a refolder write overlapped it (settled);
    the third time from the facts alone, which need no agreement with the counts."""
    for _ in range(2):
        current = read or Read.of(client, as_of)
        answer = ask(current)
        if current.settled(client):
            return answer
        read = None
    return ask(replace(Read.of(client, as_of), counts=False))
