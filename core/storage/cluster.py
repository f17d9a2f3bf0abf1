"""The cluster form of the numbered migrations (MOTCUA_CLICKHOUSE_CLUSTER): the same statements,
transformed one by one, so there is no second copy of the schema to drift.

(Over 300 lines on purpose: one statement transformer, whose rules for each kind of table are
read together; split, a rule would sit apart from the ones it must agree with.)

Two kinds of table:

- Sharded (`SHARDED`): what one dossier or feedback item is made of: its events, the parts a
  view folds from them per insert, its facts, and the counts views keep from those. Each becomes
  `<name>_local`, a Replicated*MergeTree per shard (Keeper path with `{shard}`, replica
  `{replica}`), plus a Distributed table under the original name, so every read and every
  INSERT keeps its table name. The sharding key is the item id (`cityHash64(entity_id)` on
  events, `cityHash64(dossier_id)` / `cityHash64(feedback_id)` on the rest: the same value for
  the same item): an item's events, parts, facts and duplicates all live on one shard, so the
  views fold each shard's own rows (they read the `_local` source and write the `_local`
  target), ReplacingMergeTree and FINAL collapse duplicates within the shard that holds both
  copies, and the refolder's per-item subqueries (`(agency_code, dossier_id) IN (...)`) are
  answered by each shard from its own rows (`distributed_product_mode = 'local'`).
  The counts (rollups) are sums and exact-set states that every read re-aggregates, so their
  rows may sit on any shard: their Distributed tables take `rand()` for direct inserts.
- Everywhere (`EVERYWHERE`): small or cluster-wide tables (reference data, calendar, progress
  marks, keys, plans' outputs, dead letters, the migrations record). One Replicated table under
  its own name whose replicas are every server of the cluster (Keeper path without `{shard}`),
  so each server reads a full local copy: FINAL, argMax and the IN/JOIN subqueries over them
  mean what they mean on one server. No `_local`, no Distributed table (the documented
  exception).

A statement this module does not know how to transform, or a table in neither list, raises
ValueError: a new migration must decide its table's kind here (tests/test_cluster_schema.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Table -> sharding key of its Distributed table.
SHARDED: dict[str, str] = {
    "events": "cityHash64(entity_id)",
    "dossier_state": "cityHash64(dossier_id)",  # dropped by 0019
    "feedback_state": "cityHash64(feedback_id)",  # dropped by 0019
    "dossier_parts": "cityHash64(dossier_id)",
    "feedback_parts": "cityHash64(feedback_id)",
    "dossier_facts": "cityHash64(dossier_id)",
    "feedback_facts": "cityHash64(feedback_id)",
    # the ingest's index of stored ids (0029): looked up by key across every shard, so any
    # placement answers; by the key, a retried row collapses with its first copy
    "event_ids": "cityHash64(key)",
    # the manifests (0030) a view keeps from their events: the events' own key (entity_id is
    # the manifest's day as YYYY-MM-DD), so a refill sends each row where its view wrote it
    "manifests": "cityHash64(toString(day))",
    # counts kept by views on the sharded tables: re-aggregated by every read
    "dossier_intake_daily": "rand()",  # dropped by 0033
    "feedback_intake_daily": "rand()",  # dropped by 0033
    "parts_progress": "rand()",
    "dossier_days": "rand()",
    "dossier_months": "rand()",
}

EVERYWHERE: frozenset[str] = frozenset(
    {
        "schema_migrations",
        "dead_letters",
        "dead_letter_replays",
        "metric_snapshots",
        "calendar_days",
        "agencies",
        "procedures",
        "target_status",
        "alerts",
        "api_keys",
        "store_write_probe",
        "facts_progress",
        "counts_guard",
        # one judgment per agency and day (0031), written by the one metrics service
        "reconciliation_days",
    }
)

LOCAL = "_local"
# Keeper paths: one replica set per shard for sharded tables, one across the cluster for the
# rest. `{replica}` must therefore be unique across the whole cluster (deploy/clickhouse/cluster).
SHARD_PATH = "/clickhouse/tables/{shard}/{database}/%s"
EVERYWHERE_PATH = "/clickhouse/tables/all/{database}/%s"

# Settings for the fills a migration runs (INSERT INTO <Distributed> SELECT ... FROM
# <Distributed>): 2 runs the SELECT and the INSERT on each shard, from and into its local
# tables, which is what the view itself would have done on each shard's inserts.
FILL_SETTINGS: dict[str, int] = {"parallel_distributed_insert_select": 2, "async_insert": 0}

_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<name>\w+) (?P<columns>\(.*\))\s*"
    r"ENGINE = (?P<engine>\w*MergeTree)(?:\((?P<args>[^()]*)\))?(?P<rest>.*)$",
    re.S,
)
_CREATE_AS = re.compile(r"^CREATE TABLE IF NOT EXISTS (?P<name>\w+) AS (?P<source>\w+)$")
_CREATE_MV = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\w+) TO (?P<target>\w+) AS\s"
    r"(?P<select>.*)$",
    re.S,
)
_CREATE_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS (?P<name>\w+) AS\s(?P<select>.*)$", re.S)
_ALTER = re.compile(r"^ALTER TABLE (?P<name>\w+)\s+(?P<commands>.*)$", re.S)
_DROP = re.compile(r"^DROP (?P<kind>TABLE|VIEW) IF EXISTS (?P<name>\w+)$")
_TRUNCATE = re.compile(r"^TRUNCATE TABLE IF EXISTS (?P<name>\w+)$")
_INSERT = re.compile(r"^INSERT INTO (?P<name>\w+) (?P<select>SELECT\s.*)$", re.S)
_SOURCE = re.compile(r"\b(?P<keyword>FROM|JOIN)\s+(?P<table>\w+)\b")
_WINDOW = re.compile(r"\bnon_replicated_deduplication_window\b")
_ORDER_BY = re.compile(r"ORDER BY\s+(?:\([^()]*\)|\w+)")
# ALTER commands a Distributed table takes too (it has columns, but no parts, indexes or keys).
_COLUMN_COMMAND = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b")


@dataclass
class ClusterSchema:
    """Transforms single-node statements, in migration order, into their cluster form.

    Keeps each sharded table's storage clause as its statements leave it, for `CREATE TABLE x
    AS y`: a copied Replicated engine would carry y's Keeper path, so x gets its own."""

    cluster: str
    database: str
    _storage: dict[str, str] = field(default_factory=dict)

    def statements(self, statement: str) -> list[str]:
        for pattern, handler in (
            (_CREATE_TABLE, self._create_table),
            (_CREATE_AS, self._create_as),
            (_CREATE_MV, self._create_view),
            (_CREATE_VIEW, self._create_plain_view),
            (_ALTER, self._alter),
            (_DROP, self._drop),
            (_TRUNCATE, self._truncate),
            (_INSERT, self._insert),
        ):
            match = pattern.match(statement.strip())
            if match:
                return handler(match)
        raise ValueError(f"no cluster form for this statement:\n{statement}")

    def fills(self, statements: Sequence[str], views: Iterable[str]) -> list[str]:
        """`INSERT INTO <target> <select>` for these views, from the single-node statements
        that create them: run with FILL_SETTINGS, each shard fills its local target from its
        local source (what a view sees of the rows stored before it existed)."""
        created = {
            m["name"]: m for s in statements if (m := _CREATE_MV.match(s.strip())) is not None
        }
        return [f"INSERT INTO {created[v]['target']} {created[v]['select']}" for v in views]

    # --- one handler per statement kind ---------------------------------------------------

    def _create_table(self, m: re.Match[str]) -> list[str]:
        name = m["name"]
        sharded = _kind(name)
        local = f"{name}{LOCAL}" if sharded else name
        path = (SHARD_PATH if sharded else EVERYWHERE_PATH) % local
        args = ", ".join([f"'{path}'", "'{replica}'", *([m["args"]] if m["args"] else [])])
        storage = _with_window(f"ENGINE = Replicated{m['engine']}({args}){m['rest']}")
        create = f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER {self.cluster} {m['columns']}"
        if not sharded:
            return [f"{create}\n{storage}"]
        self._storage[name] = storage
        return [f"{create}\n{storage}", self._distributed(name)]

    def _create_as(self, m: re.Match[str]) -> list[str]:
        name, source = m["name"], m["source"]
        if not (_kind(name) and _kind(source)):
            raise ValueError(f"CREATE TABLE {name} AS {source}: only sharded tables are handled")
        own = f"'{SHARD_PATH % (name + LOCAL)}'"
        storage = self._storage[source].replace(f"'{SHARD_PATH % (source + LOCAL)}'", own, 1)
        self._storage[name] = storage
        return [
            f"CREATE TABLE IF NOT EXISTS {name}{LOCAL} ON CLUSTER {self.cluster} "
            f"AS {source}{LOCAL}\n{storage}",
            self._distributed(name),
        ]

    def _create_view(self, m: re.Match[str]) -> list[str]:
        # A view fires on the inserts of the server that took them: reading the local source
        # and writing the local target, each shard folds exactly its own rows.
        target, select = m["target"], m["select"]
        sources = {s["table"] for s in _SOURCE.finditer(select)}
        if not _kind(target) or not all(_kind(t) for t in sources):
            raise ValueError(f"view {m['name']}: source and target must be sharded tables")
        local_select = _SOURCE.sub(lambda s: f"{s['keyword']} {s['table']}{LOCAL}", select)
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {m['name']} ON CLUSTER {self.cluster} "
            f"TO {target}{LOCAL} AS\n{local_select}"
        ]

    def _create_plain_view(self, m: re.Match[str]) -> list[str]:
        # A plain view is a stored query over the names reads use (Distributed or everywhere).
        return [
            f"CREATE VIEW IF NOT EXISTS {m['name']} ON CLUSTER {self.cluster} AS\n{m['select']}"
        ]

    def _alter(self, m: re.Match[str]) -> list[str]:
        name, commands = m["name"], _WINDOW.sub("replicated_deduplication_window", m["commands"])
        if not _kind(name):
            # Replicated: the ALTER (and a mutation) reaches every replica through Keeper.
            return [f"ALTER TABLE {name} {commands}"]
        self._track(name, commands)
        parts = _split_top_level(commands)
        on = f"ON CLUSTER {self.cluster}"
        out = [f"ALTER TABLE {name}{LOCAL} {on} {commands}"]
        columns = [p for p in parts if _COLUMN_COMMAND.match(p)]
        if columns:
            out.append(f"ALTER TABLE {name} {on} " + ", ".join(columns))
        return out

    def _drop(self, m: re.Match[str]) -> list[str]:
        name, kind = m["name"], m["kind"]
        if kind == "VIEW":
            return [f"DROP VIEW IF EXISTS {name} ON CLUSTER {self.cluster}"]
        # SYNC: the replica leaves Keeper now, so a table of the same name can be created again
        # at once (0028 drops and recreates feedback_facts).
        drop = f"DROP TABLE IF EXISTS %s ON CLUSTER {self.cluster} SYNC"
        self._storage.pop(name, None)
        if not _kind(name):
            return [drop % name]
        return [drop % name, drop % f"{name}{LOCAL}"]

    def _truncate(self, m: re.Match[str]) -> list[str]:
        name = m["name"]
        if not _kind(name):
            return [f"TRUNCATE TABLE IF EXISTS {name}"]  # replicated through Keeper
        return [f"TRUNCATE TABLE IF EXISTS {name}{LOCAL} ON CLUSTER {self.cluster}"]

    def _insert(self, m: re.Match[str]) -> list[str]:
        # A migration's own INSERT ... SELECT reads and writes the names reads use (the whole
        # cluster). Through this server, so each row goes to the shard of the target's key: run
        # on each shard (parallel_distributed_insert_select = 2, the default) a row would stay
        # on its source's shard, which need not be its key's.
        _kind(m["name"])
        return [
            f"INSERT INTO {m['name']} SETTINGS parallel_distributed_insert_select = 0 {m['select']}"
        ]

    # --- helpers --------------------------------------------------------------------------

    def _distributed(self, name: str) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {self.cluster} AS {name}{LOCAL}\n"
            f"ENGINE = Distributed({self.cluster}, {self.database}, {name}{LOCAL}, "
            f"{SHARDED[name]})"
        )

    def _track(self, name: str, commands: str) -> None:
        """Keep the stored storage clause in step with MODIFY ORDER BY / MODIFY SETTING."""
        storage = self._storage.get(name)
        if storage is None:
            return
        for part in _split_top_level(commands):
            if part.startswith("MODIFY ORDER BY "):
                new = " ".join(part.removeprefix("MODIFY ").split())
                head, _, tail = storage.partition(_ORDER_BY.search(storage)[0])  # type: ignore[index]
                storage = f"{head}{new}{tail}"
            elif part.startswith("MODIFY SETTING "):
                for setting in part.removeprefix("MODIFY SETTING ").split(","):
                    key, _, value = (x.strip() for x in setting.partition("="))
                    storage = _with_setting(storage, key, value)
        self._storage[name] = storage


def cluster_statements(statements: Iterable[str], *, cluster: str, database: str) -> list[str]:
    """The cluster form of these single-node statements, in order (one schema at a time)."""
    schema = ClusterSchema(cluster, database)
    return [out for s in statements for out in schema.statements(s)]


def _kind(name: str) -> bool:
    """True for a sharded table, False for an everywhere one; unknown tables are refused."""
    if name in SHARDED:
        return True
    if name in EVERYWHERE:
        return False
    raise ValueError(f"table {name!r} is neither in SHARDED nor in EVERYWHERE (cluster.py)")


def _with_window(storage: str) -> str:
    """The single-node dedup window as the replicated one, with the same value. Where the
    single-node table has none (MergeTree's default is 0: no insert dedup), 0 keeps it so:
    ReplicatedMergeTree would otherwise dedup by default (10000 blocks), a change of meaning."""
    if _WINDOW.search(storage):
        return _WINDOW.sub("replicated_deduplication_window", storage)
    if re.search(r"\bSETTINGS\b", storage):
        return re.sub(r"\bSETTINGS\b", "SETTINGS replicated_deduplication_window = 0,", storage)
    return f"{storage.rstrip()}\nSETTINGS replicated_deduplication_window = 0"


def _with_setting(storage: str, key: str, value: str) -> str:
    if re.search(rf"\b{key}\s*=", storage):
        return re.sub(rf"\b{key}\s*=\s*\w+", f"{key} = {value}", storage)
    return re.sub(r"\bSETTINGS\b", f"SETTINGS {key} = {value},", storage, count=1)


def _split_top_level(text: str) -> list[str]:
    """ALTER commands: split at commas outside parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'" and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "([":
            depth += 1
        elif not quoted and ch in ")]":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]
