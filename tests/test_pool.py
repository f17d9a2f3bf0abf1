"""The API's client pool (core/storage/pool.py) on a real embedded store."""

from __future__ import annotations

import functools
import threading
from typing import cast

import pytest
from clickhouse_connect.driver.client import Client

from core.storage.clickhouse import connect
from core.storage.pool import ClientPool, pooled, run_all


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

    threads: set[str] = set()

    def named(i: int) -> int:
        threads.add(threading.current_thread().name)
        return number(i)

    def inner(base: int) -> list[int]:
        return run_all(client, [functools.partial(named, base + i) for i in range(3)])

    assert run_all(client, [functools.partial(number, i) for i in range(10)]) == list(range(10))
    assert run_all(client, [functools.partial(inner, b) for b in (0, 10, 20)]) == [
        [0, 1, 2],
        [10, 11, 12],
        [20, 21, 22],
    ]
    assert len(opened) <= 2
    # the nested calls ran side by side on threads of their own, not inline in their callers
    assert threads and all(name.startswith("clickhouse-pool-nested") for name in threads)
    with pytest.raises(Exception, match="UNKNOWN_TABLE|Unknown table"):
        run_all(client, [lambda: client.query("SELECT * FROM no_such_table")] * 2)


def test_one_view_reads_each_reference_stamp_once_also_on_the_pools_threads(
    clickhouse: Client, clickhouse_url: str
) -> None:
    # Catches: a page asking the store for the org tree's stamp once per figure (nine times),
    # and the pool's threads not seeing the page's view (each would read its own stamp, and
    # two figures of one page could see two states of the reference data).
    from core.reference import memo

    stamps: list[str] = []

    class Counting(ClientPool):
        def query(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if "FROM agencies" in str(args[0]):
                stamps.append(str(args[0]))
            return super().query(*args, **kwargs)

    client = cast(Client, Counting(lambda: connect(clickhouse_url), 2))
    read = [functools.partial(memo.stamp, client, "agencies") for _ in range(6)]
    with memo.one_view():
        inside = run_all(client, read)
    assert len(stamps) == 1 and len(set(inside)) == 1
    outside = run_all(client, read)
    assert len(stamps) == 7 and outside == inside
