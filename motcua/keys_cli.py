"""`motcua keys create|list|revoke`: API keys, written straight into the store.

The store must be open to this process: a ClickHouse server URL (MOTCUA_CLICKHOUSE_URL, as a
user that may write `api_keys`), or a chDB directory no process has open. While `motcua up`
holds its chDB directory, manage keys through its API instead (POST /v1/keys, admin key).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.api.keys import KeyStore

# services.api.keys.Role's names, spelled out so that `motcua keys --help` need not import the
# key store (and the ClickHouse client); tests/test_cli_imports.py holds the two equal.
ROLE_NAMES = ("viewer", "auditor", "admin")


def _store() -> KeyStore:
    from core.storage.clickhouse import connect
    from core.storage.migrate import migrate
    from motcua.settings import Settings
    from services.api.keys import KeyStore

    settings = Settings()
    url = settings.resolved_clickhouse_url()
    try:
        client = connect(url, create_database=True)
        migrate(client, cluster=settings.clickhouse_cluster)
    except Exception as exc:
        raise SystemExit(
            f"cannot open the store {url}: {exc}\nAn embedded (chDB) store opens in one process "
            "only: while `motcua up` runs, use its API with an admin key "
            "(POST /v1/keys, GET /v1/keys, POST /v1/keys/<id>:revoke)."
        ) from exc
    return KeyStore(client)


def _create(args: argparse.Namespace) -> None:
    from services.api.keys import Role

    key, token = _store().create(args.name, Role[args.role], "cli")
    # The key alone on stdout (for `KEY=$(motcua keys create …)`), the rest on stderr.
    print(f"id {key.key_id}, role {key.role.name}, name “{key.name}”", file=sys.stderr)
    print(token)
    print(
        "Khóa chỉ hiện một lần, hãy lưu lại ngay. The key is shown this once: store it now.",
        file=sys.stderr,
    )


def _list(_: argparse.Namespace) -> None:
    rows = [("id", "role", "created", "revoked", "name")]
    for k in _store().all():
        revoked = f"{k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else "-"
        rows.append((k.key_id, k.role.name, f"{k.created_at:%Y-%m-%d %H:%M:%S}", revoked, k.name))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4])


def _revoke(args: argparse.Namespace) -> None:
    try:
        key = _store().revoke(args.id, "cli")
    except LookupError as exc:
        raise SystemExit(str(exc)) from exc
    at = f"{key.revoked_at:%Y-%m-%d %H:%M:%S} UTC" if key.revoked_at else ""
    print(f"revoked {key.key_id} ({key.role.name}, “{key.name}”) at {at}")


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API keys: create, list, revoke")
    commands = keys.add_subparsers(dest="keys_command", required=True)
    create = commands.add_parser("create", help="create a key and print it, once")
    create.add_argument("--role", required=True, choices=ROLE_NAMES)
    create.add_argument("--name", required=True, help='who holds it, e.g. "Kiểm toán nhà nước"')
    create.set_defaults(func=_create)
    commands.add_parser("list", help="every key: id, role, created, revoked, name").set_defaults(
        func=_list
    )
    revoke = commands.add_parser("revoke", help="revoke a key by its id (effective at once)")
    revoke.add_argument("id", help="the key's id (`motcua keys list`)")
    revoke.set_defaults(func=_revoke)
