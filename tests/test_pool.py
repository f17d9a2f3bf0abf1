"""The API's client pool (services/storage/pool.py) on a real embedded store."""

from __future__ import annotations

import functools

import pytest

from services.storage.clickhouse import connect
from services.storage.pool import ClientPool, pooled, run_all


def test_a_pool_answers_in_order_never_opens_more_than_its_size_and_does_not_deadlock_nested(
    clickhouse_url: str,
) -> None:
    # Catches: results handed back out of order (the page would show one figure under
    # another's label), a pool that opens a client per call, a nested run_all (the index
    # inside the page) waiting for threads its caller holds, and an error swallowed.
    opened = []

    def factory():  # type: ignore[no-untyped-def]
        client = connect(clickhouse_url)  # one engine per process: the session's store
        opened.append(client)
        return client

    client = pooled(factory, 2)
    pool = client
    assert isinstance(pool, ClientPool)

    def number(i: int) -> int:
        return int(client.query(f"SELECT {i:d} + sleepEachRow(0.01)").result_rows[0][0])

    def inner(base: int) -> list[int]:
        return run_all(client, [functools.partial(number, base + i) for i in range(3)])

    assert run_all(client, [functools.partial(number, i) for i in range(10)]) == list(range(10))
    assert run_all(client, [functools.partial(inner, b) for b in (0, 10, 20)]) == [
        [0, 1, 2],
        [10, 11, 12],
        [20, 21, 22],
    ]
    assert len(opened) <= 2
    with pytest.raises(Exception, match="UNKNOWN_TABLE|Unknown table"):
        run_all(client, [lambda: client.query("SELECT * FROM no_such_table")] * 2)
