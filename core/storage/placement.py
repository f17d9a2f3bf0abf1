"""Where the write paths that run DDL or refill tables must point, on one server or a cluster.

On a cluster (core/storage/cluster.py) a sharded table is `<name>_local` on every shard plus
a Distributed table under its plain name, and the materialized views read and write the
`_local` tables. Inserts and reads keep the plain names, so most code never knows. Three paths
do: the refolder's rebuild and reconciliation (core/figures/facts.py) and `motcua replay` /
the ingest's refeed (core/storage/replay.py). They
- truncate a table or drop a partition of it: on a Distributed table that is refused or
  reaches nothing, so it must go to the `_local` table of every shard (`ON CLUSTER`);
- refill a table by running a view's own SELECT, read back from `system.tables`: on a cluster
  that text names the `_local` tables of the server the client is connected to, one shard of
  the data. Run over the Distributed names instead, the SELECT reads every shard and the
  insert sends each row to the shard of its key, as an ingest insert does.

The placement is read from the store itself (which tables are Distributed, over which cluster),
not from a setting: it cannot disagree with the schema it acts on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from core.storage.cluster import LOCAL

# Distributed('<cluster>', '<database>', '<local table>'[, key]): the cluster is the first
# argument, quoted.
_CLUSTER_ARG = re.compile(r"^Distributed\('(?P<cluster>[^']+)'")
_LOCAL_NAME = re.compile(rf"\b(?P<name>\w+){LOCAL}\b")


@dataclass(frozen=True)
class Placement:
    """`cluster`: None on one server. `distributed`: the Distributed tables (plain names)."""

    cluster: str | None = None
    distributed: frozenset[str] = frozenset()

    def ddl(self, table: str) -> str:
        """The name a TRUNCATE or ALTER ... PARTITION of `table` must address."""
        if self.cluster is None or table.rpartition(".")[2] not in self.distributed:
            return table
        return f"{table}{LOCAL} ON CLUSTER {self.cluster}"

    def plain(self, name: str) -> str:
        """A view's target as the insert must name it: the Distributed table of a `_local`."""
        if self.cluster is not None and name.endswith(LOCAL):
            base = name[: -len(LOCAL)]
            if base.rpartition(".")[2] in self.distributed:
                return base
        return name

    def over_cluster(self, select: str) -> str:
        """A view's SELECT (read back from the engine) over the whole cluster: every `_local`
        table of a Distributed one renamed to its Distributed name. Unchanged on one server."""
        if self.cluster is None:
            return select

        def plain(match: re.Match[str]) -> str:
            name = match["name"]
            known = name.rpartition(".")[2] in self.distributed
            return name if known else match[0]

        return _LOCAL_NAME.sub(plain, select)


def placement(client: Client) -> Placement:
    """The placement of the client's database, read from its tables' engines."""
    rows = client.query(
        "SELECT name, engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND engine = 'Distributed'"
    ).result_rows
    clusters = set()
    for _, engine in rows:
        found = _CLUSTER_ARG.match(str(engine))
        if found:
            clusters.add(found["cluster"])
    if not rows:
        return Placement()
    if len(clusters) != 1:
        raise RuntimeError(f"the database's Distributed tables name clusters {sorted(clusters)}")
    return Placement(clusters.pop(), frozenset(str(name) for name, _ in rows))
