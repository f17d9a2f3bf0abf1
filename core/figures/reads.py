"""How a question reads the store (Read: live or as of an instant, which entities the refolder
is behind on, whether the day counts agree with the facts), and asking again when a refolder
write overlapped an answer (consistently); a question's first reads beside Read.of (beside)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client

from core.figures import facts
from core.figures.metric_model import Entity
from core.storage.pool import run_all
from core.zone import utc

# How far the parts were folded and the facts have caught up, per entity, and the day counts'
# guard: the rows of the three small tables as stored, in one query, folded here (the newest
# instant per entity, the guard's newest mark). Grouped in the engine, each branch cost another
# ~1.5 ms of analysis and planning: 12 ms a request at a million dossiers, 8 as rows (scalar
# subqueries, one per table, had cost more still). Each table keeps a row per entity and part,
# and background merges fold its parts together: a few rows, a few more under ingest, never
# more than the engine's limit on a table's parts allows.
_PROGRESS_SQL = """
SELECT 'folded' AS kind, entity, folded_at AS at, toUInt64(0) AS seq, toUInt8(0) AS dirty
FROM parts_progress
UNION ALL
SELECT 'caught_up', entity, watermark, 0, 0 FROM facts_progress
UNION ALL
SELECT 'guard', entity, toDateTime64(0, 3, 'UTC'), seq, dirty FROM counts_guard
WHERE entity = 'dossier'
"""
# The guard's newest mark (Read.settled) and whether it is dirty (Read.folded): a plain read,
# not a scalar subquery (~1.5 ms less to plan).
_GUARD_SQL = (
    "SELECT ifNull(max(seq), 0), ifNull(argMax(dirty, seq), 0) FROM counts_guard "
    "WHERE entity = 'dossier'"
)


def _progress(client: Client) -> dict[tuple[str, str], tuple[Any, int, int]]:
    """(kind, entity) -> (newest instant, the guard's newest mark, that mark's dirty flag)."""
    out: dict[tuple[str, str], tuple[Any, int, int]] = {}
    for kind, entity, at, seq, dirty in client.query(_PROGRESS_SQL).result_rows:
        old = out.get((kind, entity))
        if old is None:
            out[kind, entity] = (at, int(seq), int(dirty))
        else:
            mark = (int(seq), int(dirty)) if seq > old[1] else old[1:]
            out[kind, entity] = (max(at, old[0]), *mark)
    return out


def _after(
    rows: dict[tuple[str, str], tuple[Any, int, int]],
    later: tuple[str, str],
    than: tuple[str, str],
) -> bool:
    """Whether the instant of row `later` is after that of row `than`, a missing row being the
    epoch (as max() of no rows is): an entity with nothing folded is not behind, and neither is
    one whose parts' view has seen only inserts without it (0021's views then write the epoch)."""
    if later not in rows:
        return False
    at = rows[later][0]
    return bool(at > (rows[than][0] if than in rows else datetime(1970, 1, 1, tzinfo=at.tzinfo)))


def newest_folds(client: Client) -> dict[Entity, datetime]:
    """Per entity, the newest part's write time (parts_progress); an entity with none is left
    out."""
    rows = _progress(client)
    return {e: utc(rows["folded", e][0]) for e in facts.ENTITIES if ("folded", e) in rows}


T = TypeVar("T")


@dataclass(frozen=True)
class Read:
    """How a question reads the store: live or as of an instant (the `as_of` parameter), and
    which entities have parts the refolder has not taken yet (`behind`), whose items are then
    folded from their parts. Read.of(client, as_of) asks the store."""

    as_of: bool = False
    behind: frozenset[Entity] = frozenset({"dossier", "feedback"})
    # Whether the day counts agree with the facts (not while a refolder write was cut short and
    # not yet reconciled: the guard is dirty); if not, figures read the facts alone.
    counts: bool = True
    # The counts guard's newest mark when this was read (settled).
    counts_seq: int = 0

    @classmethod
    def of(cls, client: Client, as_of: datetime | None) -> Read:
        # Behind: a part folded after the refolder's watermark (parts_progress, migration
        # 0021). As of an instant, such a part may have been ingested after it; folding its
        # item from the parts up to that instant is then exact all the same.
        rows = _progress(client)
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
        seq, _ = client.query(_GUARD_SQL).result_rows[0]
        return int(seq) == self.counts_seq

    @classmethod
    def folded(cls, client: Client) -> Read:
        """The live facts alone, as far as the refolder has folded them: no delta (the metrics
        service's snapshots and plan evaluations, which run beside the refolder)."""
        _, dirty = client.query(_GUARD_SQL).result_rows[0]
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


def beside(
    client: Client, as_of: datetime | None, read: Read | None, calls: Sequence[Callable[[], Any]]
) -> tuple[list[Any], Read]:
    """The calls' results (a question's first reads: its scope's and catalogue's stamps) and
    how the store stands, Read.of asked side by side with them; `read` instead when the caller
    has it (the page reads it once for all its questions)."""
    if read is not None:
        return run_all(client, calls), read
    *results, fresh = run_all(client, [*calls, lambda: Read.of(client, as_of)])
    return results, fresh
