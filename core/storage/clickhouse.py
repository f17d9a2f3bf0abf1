"""One way to open ClickHouse, whether embedded (chDB) or a server: only the URL differs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from core.extra import require_chdb
from core.private import private_dir

DEFAULT_DATABASE = "motcua"


@dataclass(frozen=True)
class QueryLimits:
    """What one query may take before the engine stops it with an error."""

    seconds: float
    memory_bytes: int

    def settings(self) -> dict[str, Any]:
        return {"max_execution_time": self.seconds, "max_memory_usage": self.memory_bytes}


# The API's readers evaluate every function of a query over whole columns. With short-circuit
# evaluation (the engine's default) each condition of the form `flag AND timeliness = ...`
# computes the §2 judgment again for its own rows, once per column that names it: Biểu II.06a
# spent 320 of its ~360 ms at 10M dossiers on that, against 107 with it off. Nothing the figures
# ask can fail on a value a condition would have skipped (no division, parse or cast of a value).
READER_SETTINGS: dict[str, Any] = {"short_circuit_function_evaluation": "disable"}


def connect(
    url: str,
    *,
    database: str | None = None,
    create_database: bool = False,
    read_only: bool = False,
    limits: QueryLimits | None = None,
    **kwargs: Any,
) -> Client:
    """Open a client on `url` (chdb:///path or http(s)://user:pass@host:port/db).

    An embedded (chDB) database is created when missing, so a fresh directory is usable at once;
    on a server only the migrating process creates it (`create_database`), since the services'
    users are read-only or may write only. chDB allows one engine per process and one process per
    data directory; callers share it.

    `read_only`: on chDB, a client whose every query runs with readonly=1, so the engine itself
    refuses any write, DDL or settings change through it (the embedded counterpart of the
    api_ro user); it opens an engine another client of this process already set up. On a
    server, the user's own profile decides (api_ro, grafana_ro: readonly=1).

    `limits`: every query of this client is stopped past this time and memory (the API's
    clients: no request, however crafted, can hold the engine or the process's memory).
    """
    if limits is not None:
        kwargs["settings"] = {**limits.settings(), **READER_SETTINGS, **kwargs.get("settings", {})}
    parsed = urlparse(url)
    if parsed.scheme == "chdb":
        require_chdb()
        path = Path(unquote(parsed.path))
        db = database or DEFAULT_DATABASE
        if read_only:
            # readonly last: chDB applies settings one by one, and readonly=1 locks the rest
            settings = {**kwargs.pop("settings", {}), "readonly": 1}
            reader = clickhouse_connect.get_client(
                dsn=f"chdb://{path}", settings=settings, **kwargs
            )
            reader.database = db
            return reader
        private_dir(path)
        client = clickhouse_connect.get_client(dsn=f"chdb://{path}", **kwargs)
        client.command(f"CREATE DATABASE IF NOT EXISTS {_ident(db)}")
        client.database = db
        return client
    if parsed.scheme in ("http", "https"):
        db = database or parsed.path.strip("/") or DEFAULT_DATABASE
        query = parse_qs(parsed.query)
        if "ca_cert" in query:  # https://…?ca_cert=/path/ca.pem: a private CA (deploy/README)
            if parsed.scheme != "https":
                raise ValueError("ca_cert= needs an https:// ClickHouse URL")
            kwargs.setdefault("ca_cert", query["ca_cert"][0])
        bootstrap = clickhouse_connect.get_client(
            host=parsed.hostname or "localhost",
            port=parsed.port or (8443 if parsed.scheme == "https" else 8123),
            username=unquote(parsed.username or "default"),
            password=unquote(parsed.password or ""),
            secure=parsed.scheme == "https",
            **kwargs,
        )
        if create_database:
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {_ident(db)}")
        bootstrap.database = db
        return bootstrap
    raise ValueError(
        f"unsupported ClickHouse URL scheme {parsed.scheme!r}: use chdb:// or http(s)://"
    )


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"invalid database name {name!r}")
    return f"`{name}`"


def ping(client: Client) -> bool:
    """Whether the store answers at all."""
    try:
        client.query("SELECT 1")
    except Exception:
        return False
    return True


def takes_writes(client: Client, writer: str) -> bool:
    """Whether the store answers and can write now: tells an outage from a refused row.

    A read alone is not enough: a full disk or an unwritable data directory answers SELECT 1
    and fails every insert, and a writer that took that for a refused row would dead-letter a
    whole batch of valid events. Asked only after an insert failed, so it costs nothing while
    inserts succeed.
    """
    try:
        client.insert(
            "store_write_probe",
            [[writer, datetime.now(UTC)]],
            column_names=["writer", "at"],
            settings={"insert_deduplicate": 0},
        )
    except Exception:
        return False
    return True
