"""The cluster form of the migrations (core/storage/cluster.py) against the single-node one.

No ClickHouse server or Keeper runs here, so the cluster statements are checked, not run: each
one through ClickHouse's own parser (chDB's formatQuery, which parses without executing), and
the schema they leave, replayed statement by statement, against the schema the single-node
migrations leave in the real engine.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from core.figures.facts import SHAPES
from core.storage.cluster import EVERYWHERE, LOCAL, SHARDED, ClusterSchema
from core.storage.migrate import _RECORD, BACKFILLS, FILLS, available, migrate

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = "motcua"
DATABASE = "motcua"
READ_PATH = (
    "core/figures",
    "core/feeds",
    "core/plans",
    "services/metrics",
    "services/api",
    "tools/grafana",
)


def cluster_form() -> list[str]:
    """Every statement a cluster migration sends, fills included, in order."""
    schema = ClusterSchema(CLUSTER, DATABASE)
    out = schema.statements(_RECORD)
    for migration in available():
        statements = migration.statements()
        out += [x for s in statements for x in schema.statements(s)]
        views = [*BACKFILLS.get(migration.version, ()), *FILLS.get(migration.version, {})]
        out += schema.fills(statements, views)
    return out


def formatted(client: Client, statement: str) -> str:
    return str(
        client.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][
            0
        ]
    )


def objects_left(statements: list[str]) -> dict[str, str]:
    """name -> what the statements leave there: the engine of a table ('Distributed(...)' in
    full), 'MaterializedView <target> <sources>' or 'View', replaying creates and drops."""
    left: dict[str, str] = {}
    for s in statements:
        if m := re.match(
            r"CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER \w+ .*?ENGINE = (.*?)$", s, re.S | re.M
        ):
            left.setdefault(m[1], m[2].strip())
        elif m := re.match(
            r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) ON CLUSTER \w+ TO (\w+) AS\s(.*)",
            s,
            re.S,
        ):
            sources = sorted(set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", m[3])))
            left.setdefault(m[1], f"MaterializedView {m[2]} {' '.join(sources)}")
        elif m := re.match(r"CREATE VIEW IF NOT EXISTS (\w+) ON CLUSTER \w+ AS", s):
            left.setdefault(m[1], "View")
        elif m := re.match(r"DROP (?:TABLE|VIEW) IF EXISTS (\w+) ON CLUSTER \w+", s):
            left.pop(m[1], None)
    return left


@pytest.fixture(scope="module")
def single_node(clickhouse_url: str, clickhouse: Client) -> dict[str, str]:
    """name -> engine of everything the single-node migrations leave, in a database of its own
    (the session engine: chDB opens one per process)."""
    from core.storage.clickhouse import connect

    client = connect(clickhouse_url, database=f"c{uuid.uuid4().hex[:12]}")
    migrate(client)
    rows = client.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
    ).result_rows
    return {str(name): str(engine) for name, engine in rows}


@pytest.mark.clickhouse
def test_every_cluster_statement_parses(clickhouse: Client) -> None:
    # Catches a transform that writes SQL the server would refuse at `motcua migrate` (a
    # misplaced ON CLUSTER, engine arguments in the wrong order, a broken ALTER split).
    statements = cluster_form()
    assert len(statements) > 60
    for statement in statements:
        assert formatted(clickhouse, statement), statement


@pytest.mark.clickhouse
def test_every_table_has_its_cluster_counterpart(single_node: dict[str, str]) -> None:
    # Catches a table created on one server only, a sharded table without the Distributed
    # table reads and inserts address, a Distributed table over the wrong local table or with a
    # sharding key that does not keep an item on one shard, an unreplicated engine, and a
    # table or view the cluster form adds or loses.
    left = objects_left(cluster_form())
    tables = {n: e for n, e in single_node.items() if e.endswith("MergeTree")}
    assert tables and set(tables) <= set(SHARDED) | EVERYWHERE
    for name, engine in tables.items():
        if name in SHARDED:
            assert left[f"{name}{LOCAL}"].startswith(f"Replicated{engine}("), name
            assert "'/clickhouse/tables/{shard}/{database}/" in left[f"{name}{LOCAL}"], name
            assert left[name] == (
                f"Distributed({CLUSTER}, {DATABASE}, {name}{LOCAL}, {SHARDED[name]})"
            )
        else:
            assert left[name].startswith(f"Replicated{engine}("), name
            assert "'/clickhouse/tables/all/{database}/" in left[name], name
    views = {n for n, e in single_node.items() if e in ("View", "MaterializedView")}
    assert {n for n, e in left.items() if e.split()[0] in ("View", "MaterializedView")} == views
    expected = set(single_node) | {f"{n}{LOCAL}" for n in tables if n in SHARDED}
    assert set(left) == expected


@pytest.mark.pure
def test_items_shard_by_their_id_in_every_table_of_the_item() -> None:
    # Catches a sharding key that splits one dossier's events, parts and facts across shards:
    # its views would fold part of it and FINAL would keep duplicates on two shards.
    for shape in SHAPES.values():
        for table in (shape.parts, shape.facts):
            assert SHARDED[table] == f"cityHash64({shape.key})", table
    assert SHARDED["events"] == "cityHash64(entity_id)"


@pytest.mark.pure
def test_views_read_local_sources_and_write_local_targets() -> None:
    # Catches a view over a Distributed table (it would fire on no insert, or fold rows of
    # other shards) or into one (each shard's rows sent around the cluster again).
    left = objects_left(cluster_form())
    views = {n: e.split()[1:] for n, e in left.items() if e.startswith("MaterializedView")}
    assert len(views) >= 7
    for name, (target, *sources) in views.items():
        assert target.endswith(LOCAL) and left[target].startswith("Replicated"), name
        assert sources and all(s.endswith(LOCAL) for s in sources), name


@pytest.mark.pure
def test_alters_reach_the_local_and_the_distributed_table() -> None:
    # Catches a column added to the shards' tables but not to the Distributed table reads go
    # through (its queries would not see the column), or a key change sent to a Distributed
    # table (refused by the server).
    statements = cluster_form()
    days = [s for s in statements if s.startswith("ALTER TABLE dossier_days")]
    assert len(days) == 4  # 0025's key change, 0032's new anchor
    local, distributed, *anchor = days
    assert local.startswith(f"ALTER TABLE dossier_days{LOCAL} ON CLUSTER {CLUSTER}")
    assert "MODIFY ORDER BY" in local and "end_lead" in local
    assert distributed.startswith(f"ALTER TABLE dossier_days ON CLUSTER {CLUSTER} ADD COLUMN")
    assert "ORDER BY" not in distributed
    assert [s.split(" MODIFY COLUMN anchor ")[0] for s in anchor] == [
        f"ALTER TABLE dossier_days{LOCAL} ON CLUSTER {CLUSTER}",
        f"ALTER TABLE dossier_days ON CLUSTER {CLUSTER}",
    ]
    assert all("'received_procedure' = 7" in s for s in anchor)
    # months are created from the days as they were then, under a Keeper path of their own
    months = next(
        s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS dossier_months_local")
    )
    assert "/dossier_months_local'" in months and "end_lead)" in months
    # a mutation of a table on every server is replicated by Keeper: sent once, as is
    assert (
        "ALTER TABLE facts_progress DELETE WHERE entity = 'feedback' SETTINGS mutations_sync = 2"
        in statements
    )


@pytest.mark.pure
def test_dedup_windows_keep_their_single_node_meaning() -> None:
    # Catches the parts and rollups getting the replicated default window (10000 blocks) that
    # 0024/0027 removed on one server (a retry dropped for a view whose part never landed), or
    # the events losing theirs.
    statements = cluster_form()
    assert not any("non_replicated_deduplication_window" in s for s in statements)

    def window(table: str) -> str:
        create = next(s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {table} "))
        alters = [s for s in statements if s.startswith(f"ALTER TABLE {table} ")]
        found = re.findall(r"replicated_deduplication_window = (\d+)", "\n".join([create, *alters]))
        return found[-1]

    assert window(f"events{LOCAL}") == "10000"
    assert window("dead_letters") == "10000"
    for table in ("dossier_parts", "feedback_parts", "parts_progress", "dossier_intake_daily"):
        assert window(f"{table}{LOCAL}") == "0", table
    assert window("api_keys") == "0"  # MergeTree on one server: no insert dedup


@pytest.mark.pure
def test_the_read_paths_tables_exist_under_their_names() -> None:
    # Catches a table the metrics, the API or Grafana read that the cluster form renames or
    # drops: reads address plain names, which must be the Distributed (or everywhere) tables.
    left = objects_left(cluster_form())
    named: set[str] = {t for shape in SHAPES.values() for t in (shape.parts, shape.facts)}
    for folder in READ_PATH:
        for path in (ROOT / folder).rglob("*.py"):
            named |= set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)\b", path.read_text()))
    known = set(SHARDED) | EVERYWHERE | {n for n, e in left.items() if "View" in e}
    read = named & known - {"dossier_state", "feedback_state"}
    assert {"events", "dossier_facts", "dossier_days", "dossier_months", "alerts"} <= read
    for name in read:
        kind = left[name]
        if name in SHARDED:
            assert kind.startswith("Distributed("), name
        else:
            assert kind.startswith(("Replicated", "View", "MaterializedView")), name


class Recorder:
    """A client that records what migrate() sends and answers every query with one zero."""

    database = DATABASE

    def __init__(self) -> None:
        self.sent: list[str] = []

    def command(self, sql: str, **_: Any) -> None:
        self.sent.append(sql)

    def query(self, sql: str, **_: Any) -> Any:
        return type("Result", (), {"result_rows": [[0]]})()

    def insert(self, *_: Any, **__: Any) -> None:
        pass


@pytest.mark.pure
def test_single_node_statements_are_unchanged() -> None:
    # Catches the cluster option leaking into one server's migrations: the statements sent
    # without MOTCUA_CLICKHOUSE_CLUSTER are the migrations' own, byte for byte.
    client = Recorder()
    migrate(client, up_to=None)  # type: ignore[arg-type]
    expected = [
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    ]
    for migration in available():
        expected += migration.statements()
        # the fills' SELECT is read back from the engine: the recorder answers "0"
        expected += [f"INSERT INTO {t} 0" for t in FILLS.get(migration.version, {}).values()]
    assert client.sent == expected
    assert not any(re.search(r"ON CLUSTER|Replicated|Distributed", s) for s in client.sent)


@pytest.mark.pure
def test_cluster_migrate_sends_only_the_cluster_form() -> None:
    # Catches migrate() with a cluster sending a single-node statement (a table created on one
    # server only) or skipping a fill.
    client = Recorder()
    migrate(client, cluster=CLUSTER)  # type: ignore[arg-type]
    assert client.sent == cluster_form()
    for statement in client.sent:
        if statement.startswith(("CREATE", "DROP")):
            assert f" ON CLUSTER {CLUSTER}" in statement, statement


@pytest.mark.pure
def test_a_table_of_no_known_kind_is_refused() -> None:
    # Catches a new migration's table silently created on one server: it must be put in
    # SHARDED or EVERYWHERE first.
    with pytest.raises(ValueError, match="neither in SHARDED nor in EVERYWHERE"):
        ClusterSchema(CLUSTER, DATABASE).statements(
            "CREATE TABLE IF NOT EXISTS newcomer (a UInt8) ENGINE = MergeTree ORDER BY a"
        )
    with pytest.raises(ValueError, match="no cluster form"):
        ClusterSchema(CLUSTER, DATABASE).statements("RENAME TABLE events TO events_old")
