"""The ingest's filter of ids that may already be stored (services/ingest/stored_ids.py)."""

from __future__ import annotations

import random
from uuid import UUID

import numpy as np
from clickhouse_connect.driver.client import Client

from services.ingest.stored_ids import KEY_SQL, StoredIds, key_of


def _ids(n: int, seed: int) -> list[UUID]:
    rng = random.Random(seed)
    return [UUID(int=rng.getrandbits(128), version=4) for _ in range(n)]


def test_every_added_id_is_found_before_and_after_the_bulk_merge() -> None:
    # Catches: ids lost when the fresh set is merged into the sorted array, or a search that
    # misses the last position.
    loaded, added, never = _ids(1_000, 1), _ids(250, 2), _ids(1_000, 3)
    keys = np.array([key_of(u) for u in loaded + loaded[:10]], dtype=np.uint64)  # repeats too
    stored = StoredIds(keys, merge_at=100)
    assert len(stored) == 1_000
    for chunk in range(0, len(added), 50):  # merges at 100, 200
        stored.add(added[chunk : chunk + 50])
    assert len(stored) == 1_250
    stored.add(loaded[:150])  # known already (a re-insert): a merge that adds nothing
    assert len(stored) == 1_250
    assert stored.may_contain(loaded + added) == [True] * 1_250
    assert not any(stored.may_contain(never))
    biggest = max(loaded + added, key=key_of)
    assert stored.may_contain([biggest]) == [True]


def test_an_empty_filter_finds_nothing() -> None:
    assert StoredIds().may_contain(_ids(3, 4)) == [False, False, False]
    assert StoredIds().may_contain([]) == []


def test_keys_match_what_clickhouse_computes_for_the_same_uuid(clickhouse: Client) -> None:
    # Catches: a start-up load whose keys differ from the ones the ingest computes (every copy of
    # an event stored before the restart would then pass as new).
    ids = _ids(20, 5)
    rows = clickhouse.query(
        f"SELECT toString(event_id), {KEY_SQL} FROM "
        "(SELECT arrayJoin({ids:Array(UUID)}) AS event_id)",
        parameters={"ids": [str(u) for u in ids]},
    ).result_rows
    assert {UUID(s): int(k) for s, k in rows} == {u: key_of(u) for u in ids}
