"""The write paths that truncate, drop partitions or refill tables, on one server and on a
cluster (core/storage/placement.py: the refolder's rebuild and reconciliation, `motcua
replay`, the ingest's refeed).

No ClickHouse cluster can run here (chDB refuses a Distributed table over a cluster it has no
configuration for), so the cluster side is checked on the statements: they parse with
ClickHouse's own parser, address every shard's `_local` table, and a view's refill over the
cluster is the single-node view's own SELECT. The one server side runs on the real engine.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from core.figures.facts import SHAPES
from core.storage.cluster import EVERYWHERE, LOCAL, SHARDED
from core.storage.migrate import available
from core.storage.placement import Placement, placement
from core.storage.replay import derived_views
from tests.test_cluster_schema import CLUSTER, cluster_form, formatted

_MV = re.compile(
    r"CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\w+)(?: ON CLUSTER \w+)? "
    r"TO (?P<target>\w+) AS\s(?P<select>.*)",
    re.S,
)


def on_cluster() -> Placement:
    return Placement(CLUSTER, frozenset(SHARDED))


@pytest.mark.clickhouse
def test_one_server_is_addressed_as_before(clickhouse: Client) -> None:
    placed = placement(clickhouse)
    assert placed == Placement()
    assert placed.ddl("dossier_facts") == "dossier_facts"
    views = derived_views(clickhouse)
    assert views, "the store's views fed by the events log"
    assert not [v for v in views if v.target.endswith(LOCAL) or LOCAL in v.select]


class SystemTablesDouble:
    """A test double of a cluster server's answer about its Distributed tables: no cluster runs
    here. It answers only the query placement() sends."""

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self.rows = rows

    def query(self, sql: str, **_: Any) -> Any:
        assert "engine = 'Distributed'" in sql
        return type("Result", (), {"result_rows": self.rows})()


def test_the_cluster_is_read_from_the_distributed_tables() -> None:
    engine = "Distributed('motcua', 'motcua', '{}_local', cityHash64(dossier_id))"
    rows = [(t, engine.format(t)) for t in ("dossier_facts", "dossier_days")]
    placed = placement(SystemTablesDouble(rows))  # type: ignore[arg-type]
    assert placed == Placement("motcua", frozenset({"dossier_facts", "dossier_days"}))
    mixed = [*rows, ("events", engine.replace("'motcua', 'motcua'", "'other', 'motcua'"))]
    with pytest.raises(RuntimeError, match="clusters"):
        placement(SystemTablesDouble(mixed))  # type: ignore[arg-type]


@pytest.mark.clickhouse
def test_truncates_and_partition_drops_reach_every_shard(clickhouse: Client) -> None:
    placed = on_cluster()
    written = {s.facts for s in SHAPES.values()} | {t for s in SHAPES.values() for t in s.counts}
    # what motcua replay truncates, named with their database as the engine gives them
    written |= {v.target for v in derived_views(clickhouse)}
    bare = {t.rpartition(".")[2] for t in written}
    assert bare <= set(SHARDED), "every table the write paths rewrite is sharded"
    for table in sorted(written):
        for statement in (
            f"TRUNCATE TABLE {placed.ddl(table)}",
            f"ALTER TABLE {placed.ddl(table)} DROP PARTITION 2026",
        ):
            assert f"{table}{LOCAL} ON CLUSTER {CLUSTER}" in statement
            formatted(clickhouse, statement)  # ClickHouse's own parser takes it
    everywhere = sorted(EVERYWHERE)[0]
    assert placed.ddl(everywhere) == everywhere  # one replicated table: Keeper replicates DDL


def test_a_refill_over_the_cluster_is_the_single_node_views_select() -> None:
    single = [m for migration in available() for s in migration.statements() if (m := _MV.match(s))]
    cluster = [m for s in cluster_form() if (m := _MV.match(s))]
    assert len(cluster) == len(single) > 0
    placed = on_cluster()
    for one, many in zip(single, cluster, strict=True):
        assert many["name"] == one["name"]
        assert many["select"] != one["select"] or LOCAL not in many["select"]
        assert placed.over_cluster(many["select"]) == one["select"], one["name"]
        assert placed.plain(many["target"]) == one["target"], one["name"]
    # on one server nothing is renamed, even a name that happens to end in _local
    assert Placement().over_cluster("SELECT * FROM x_local") == "SELECT * FROM x_local"
    assert on_cluster().over_cluster("SELECT * FROM x_local") == "SELECT * FROM x_local"
