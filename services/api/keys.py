"""API keys: random tokens with a role, stored as SHA-256 in `api_keys`, created and revoked as
rows (migration 0016). The CLI (`motcua keys`), the admin routes and the API's check share this."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

from clickhouse_connect.driver.client import Client

from core.zone import utc

PREFIX = "mk_"
# An operator-chosen bootstrap key is hashed like a generated one, so it needs as much entropy:
# `openssl rand -hex 32` gives 64 characters.
MIN_KEY_LENGTH = 32


class Role(IntEnum):
    """Each role may do everything the roles below it may."""

    viewer = 1
    auditor = 2
    admin = 3


class KeyStoreReadOnly(Exception):
    """This process reads keys through a read-only ClickHouse user and cannot write them."""


def hash_key(token: str) -> str:
    # SHA-256 and not bcrypt/argon2: slow hashes exist to protect low-entropy passwords against
    # guessing. A generated key carries 256 random bits (a bootstrap key at least 32 characters),
    # beyond any guessing however fast the hash; a slow hash would instead cost ~100 ms of CPU on
    # every request, or force the process to keep clear keys in memory to avoid that.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh key and its public id; the id is the key's visible prefix, so a key found in a
    log or a config file says which one to revoke."""
    key_id = secrets.token_hex(4)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


# Every key folded from its rows. The table holds one row per key and revocation, so reading it
# all is cheap, and a negative answer (a wrong key) needs no query of its own.
_KEYS = """
SELECT key_id,
       anyIf(key_hash, action = 'created'),
       anyIf(name, action = 'created'),
       anyIf(role, action = 'created'),
       minIf(at, action = 'created'),
       anyIf(actor, action = 'created'),
       if(countIf(action = 'revoked') > 0, minIf(at, action = 'revoked'), NULL)
FROM api_keys
GROUP BY key_id
HAVING countIf(action = 'created') > 0
ORDER BY 5, key_id
"""

_COLUMNS = ["key_id", "action", "at", "key_hash", "name", "role", "actor"]


def _now() -> datetime:
    """Now, at the table's millisecond precision, so what is returned equals what is read."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class KeyStore:
    """Keys in ClickHouse, with the lookup the API makes on every request.

    A lookup reads a snapshot of every active key, refreshed at most every `ttl` seconds: one
    small query per `ttl` however many requests arrive, and a flood of wrong keys costs no query
    at all. A change made through this store (the admin routes) is seen at once; one made by
    another process (`motcua keys revoke` against a ClickHouse server) within `ttl`.
    """

    def __init__(
        self,
        client: Client,
        *,
        writable: bool = True,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.writable = writable
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[str, ApiKey] = {}
        self._loaded_at: float | None = None

    def _rows(self) -> list[tuple[str, ApiKey]]:
        rows = self._client.query(_KEYS).result_rows
        return [
            (
                digest,
                ApiKey(
                    key_id=key_id,
                    name=name,
                    role=Role[role],
                    created_at=utc(created),
                    created_by=actor,
                    revoked_at=utc(revoked),
                ),
            )
            for key_id, digest, name, role, created, actor, revoked in rows
        ]

    def all(self) -> list[ApiKey]:
        """Every key ever created, oldest first, revoked ones included."""
        return [key for _, key in self._rows()]

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key with this token, or None (unknown or revoked)."""
        digest = hash_key(token)
        with self._lock:
            now = self._clock()
            if self._loaded_at is None or now - self._loaded_at >= self._ttl:
                self._active = {d: k for d, k in self._rows() if k.revoked_at is None}
                self._loaded_at = now
            # A dict lookup by digest: an attacker cannot steer the digest of a guess towards a
            # stored one, so this comparison leaks nothing useful through its timing.
            return self._active.get(digest)

    def _insert(self, row: list[object]) -> None:
        if not self.writable:
            raise KeyStoreReadOnly(
                "this process reads API keys through a read-only ClickHouse user; manage keys "
                "with `motcua keys` on the admin connection"
            )
        self._client.insert("api_keys", [row], column_names=_COLUMNS)
        with self._lock:
            self._loaded_at = None  # the next lookup sees the change

    def create(self, name: str, role: Role, actor: str) -> tuple[ApiKey, str]:
        """A new key; the token is returned here once and never stored."""
        taken = {k.key_id for k in self.all()}
        key_id, token = new_token()
        while key_id in taken:
            key_id, token = new_token()
        return self._add(key_id, token, name, role, actor), token

    def _add(self, key_id: str, token: str, name: str, role: Role, actor: str) -> ApiKey:
        now = _now()
        self._insert([key_id, "created", now, hash_key(token), name, role.name, actor])
        return ApiKey(key_id, name, role, now, actor, None)

    def revoke(self, key_id: str, actor: str) -> ApiKey:
        """Revoke a key (again is harmless); LookupError when no key has this id."""
        found = [k for k in self.all() if k.key_id == key_id]
        if not found:
            raise LookupError(f"no API key with id {key_id!r}")
        key = found[0]
        if key.revoked_at is not None:
            return key
        now = _now()
        self._insert([key_id, "revoked", now, "", "", "", actor])
        return ApiKey(key.key_id, key.name, key.role, key.created_at, key.created_by, now)

    def ensure_bootstrap(
        self,
        token: str,
        role: Role = Role.admin,
        name: str = "bootstrap admin",
        setting: str = "MOTCUA_BOOTSTRAP_ADMIN_KEY",
    ) -> tuple[ApiKey, bool]:
        """Make sure this operator-chosen token is a key of `role` (an admin key, or the viewer
        key Grafana reads the figures with); True when it was added now.

        A token that exists already is left as it is, revoked included: revoking the bootstrap
        key must not be undone by the next restart with the old environment.
        """
        if len(token) < MIN_KEY_LENGTH:
            raise ValueError(
                f"{setting} must be at least {MIN_KEY_LENGTH} characters "
                "(e.g. `openssl rand -hex 32`)"
            )
        digest = hash_key(token)
        rows = self._rows()
        for stored, key in rows:
            if stored == digest:
                return key, False
        taken = {k.key_id for _, k in rows}
        key_id = f"boot-{digest[:8]}"
        if key_id in taken:  # a different token with the same short id: make the id longer
            key_id = f"boot-{digest[:16]}"
        return self._add(key_id, token, name, role, "bootstrap"), True

    def is_empty(self) -> bool:
        return not self._client.query("SELECT count() FROM api_keys").result_rows[0][0]


def admin_key_at_start(store: KeyStore, bootstrap: str | None) -> tuple[str | None, bool]:
    """The admin key a process hands its own callers, and whether it was generated now.

    The bootstrap key when one is set (added if missing); else, on a store with no key at all, a
    new admin key, to be printed once; else none, since earlier keys are not stored in clear.
    """
    if bootstrap:
        store.ensure_bootstrap(bootstrap)
        return bootstrap, False
    if store.is_empty():
        _, token = store.create("motcua up (first start)", Role.admin, "first-start")
        return token, True
    return None, False
