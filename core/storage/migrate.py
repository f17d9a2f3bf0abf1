"""Numbered plain-SQL migrations, forward-only, applied in order and recorded."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client

from core.storage.cluster import FILL_SETTINGS, ClusterSchema
from core.storage.replay import fill_new_views, view_select

log = logging.getLogger(__name__)

# Migrations that add materialized views over `events`: a store that already holds events gets
# their tables filled from them when the migration is applied.
BACKFILLS: dict[int, tuple[str, ...]] = {18: ("dossier_parts_mv", "feedback_parts_mv")}
# Migrations that add materialized views over a table other than `events` (view: its target):
# the target is filled from what that table already holds, by the view's own query.
FILLS: dict[int, dict[str, str]] = {
    20: {"dossier_days_mv": "dossier_days"},
    25: {"dossier_days_mv": "dossier_days"},
    26: {"dossier_months_mv": "dossier_months"},
    # the month counts (emptied too) follow through their own view
    32: {"dossier_days_mv": "dossier_days"},
    21: {
        "dossier_parts_progress_mv": "parts_progress",
        "feedback_parts_progress_mv": "parts_progress",
    },
}

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        # Statements end with ';' at the end of a line; '--' comments are dropped first so a ';'
        # inside a comment cannot split a statement.
        lines = [ln for ln in self.sql.splitlines() if not ln.lstrip().startswith("--")]
        text = "\n".join(re.sub(r"\s--\s.*$", "", ln) for ln in lines)
        return [s.strip() for s in re.split(r";\s*$", text, flags=re.M) if s.strip()]


def available() -> list[Migration]:
    folder = resources.files("core.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers: {versions}")
    return found


_RECORD = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
    "ENGINE = ReplacingMergeTree ORDER BY version"
)


def migrate(client: Client, up_to: int | None = None, *, cluster: str | None = None) -> list[int]:
    """Apply every migration not yet recorded (up to version `up_to`: a store as an older
    release left it, for a test of the next migration); returns the versions applied now.

    `cluster` (MOTCUA_CLICKHOUSE_CLUSTER): apply their cluster form instead
    (core/storage/cluster.py), ON CLUSTER from this one server."""
    if cluster is not None:
        return _migrate_cluster(client, up_to, ClusterSchema(cluster, client.database or ""))
    client.command(_RECORD)
    done = {
        row[0] for row in client.query("SELECT version FROM schema_migrations FINAL").result_rows
    }
    applied = []
    for migration in available():
        if migration.version in done or (up_to is not None and migration.version > up_to):
            continue
        for statement in migration.statements():
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration.version)
        if migration.version in BACKFILLS:
            views = BACKFILLS[migration.version]
            for table, rows in fill_new_views(client, views).items():
                log.info("filled %s from the stored events: %d rows", table, rows)
        for view, target in FILLS.get(migration.version, {}).items():
            # Migrations run before any writer starts, so nothing reaches the target twice.
            client.command(f"INSERT INTO {target} {view_select(client, view)}")
            log.info("filled %s through %s", target, view)
    return applied


def _migrate_cluster(client: Client, up_to: int | None, schema: ClusterSchema) -> list[int]:
    """migrate() on a cluster. The schema is rebuilt from the first migration on every run
    (the transform of a statement can depend on earlier ones), but only the pending ones are
    sent. The record is itself replicated to every server, so all agree on what was applied.
    Fills: each view's own SELECT from its migration, run on every shard (FILL_SETTINGS); the
    single-node path reads it back from system.tables, which on a cluster holds the `_local`
    form of one server only."""
    if not client.database:
        raise ValueError("a cluster migration needs the database in the URL (…:8123/motcua)")
    for statement in schema.statements(_RECORD):
        client.command(statement)
    done = {
        row[0] for row in client.query("SELECT version FROM schema_migrations FINAL").result_rows
    }
    applied = []
    for migration in available():
        pending = migration.version not in done and (up_to is None or migration.version <= up_to)
        statements = [out for s in migration.statements() for out in schema.statements(s)]
        if not pending:
            continue
        for statement in statements:
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        log.info(
            "applied migration %04d_%s on cluster %s",
            migration.version,
            migration.name,
            schema.cluster,
        )
        applied.append(migration.version)
        views = [*BACKFILLS.get(migration.version, ()), *FILLS.get(migration.version, {})]
        for fill in schema.fills(migration.statements(), views):
            client.command(fill, settings=FILL_SETTINGS)
            log.info("filled on every shard: %s", fill.split(" SELECT", 1)[0])
    return applied
