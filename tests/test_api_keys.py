"""API keys over real HTTP: open routes stay open, every other route needs a key of a high enough
role, a revocation takes effect, keys are never stored in clear, and `motcua keys` manages them."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from clickhouse_connect.driver.client import Client

from core.messaging.nats_server import free_port
from services.api.auth import ROUTE_ROLES
from services.api.keys import KeyStore, KeyStoreReadOnly, Role
from tests.helpers import TEST_ADMIN_KEY, eventually
from tests.test_plans import VALID as VALID_PLAN

session_loop = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parent.parent

# One request per protected route, answered without error once the key's role is enough. The
# ids do not exist (404 is an answer past the check); `{key}` is a throwaway key to revoke.
SAMPLES: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("GET", "/v1/reconciliation"): ("/v1/reconciliation?agency=KEYTEST&format=csv", None),
    ("GET", "/v1/reconciliation/{agency}/{day}/ids"): (
        "/v1/reconciliation/KEYTEST/2026-03-02/ids",
        None,
    ),
    ("GET", "/v1/metrics"): ("/v1/metrics", None),
    ("GET", "/v1/metrics/{metric}"): ("/v1/metrics/on_time_rate?agency=KEYTEST", None),
    ("GET", "/v1/rule-sets"): ("/v1/rule-sets", None),
    ("GET", "/v1/index766"): ("/v1/index766?agency=KEYTEST", None),
    ("GET", "/v1/targets"): ("/v1/targets?agency=KEYTEST", None),
    ("GET", "/v1/targets/{target_id}"): ("/v1/targets/no-such-target", None),
    ("GET", "/v1/alerts"): ("/v1/alerts?agency=KEYTEST", None),
    ("GET", "/v1/pipeline"): ("/v1/pipeline", None),
    ("GET", "/v1/metrics/{metric}/items"): ("/v1/metrics/on_time_rate/items?agency=KEYTEST", None),
    ("GET", "/v1/reports/ii06a"): ("/v1/reports/ii06a?agency=KEYTEST&format=csv", None),
    ("GET", "/v1/dossiers/{dossier_id}/events"): ("/v1/dossiers/NO-SUCH/events", None),
    ("GET", "/v1/feedback/{feedback_id}/events"): ("/v1/feedback/NO-SUCH/events", None),
    ("GET", "/v1/dead-letters"): ("/v1/dead-letters?integrator=KEYTEST", None),
    ("GET", "/v1/dead-letters/summary"): ("/v1/dead-letters/summary?integrator=KEYTEST", None),
    ("GET", "/v1/dead-letters/{stream_seq}/raw"): (
        "/v1/dead-letters/1/raw?subject=motcua.events.KEYTEST.dossier.received",
        None,
    ),
    ("POST", "/v1/metrics:refresh"): ("/v1/metrics:refresh", None),
    ("POST", "/v1/dead-letters:replay"): (
        "/v1/dead-letters:replay",
        {"integrator": "KEYTEST", "dry_run": True},
    ),
    # JSON is YAML: a plan file sent as a JSON object
    ("POST", "/v1/plans:check"): (
        "/v1/plans:check",
        json.loads(json.dumps(yaml.safe_load(VALID_PLAN), default=str)),
    ),
    ("GET", "/v1/keys"): ("/v1/keys", None),
    ("POST", "/v1/keys"): ("/v1/keys", {"name": "thử", "role": "viewer"}),
    ("POST", "/v1/keys/{key_id}:revoke"): ("/v1/keys/{key}:revoke", None),
}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _new_key(http: httpx.AsyncClient, role: str, name: str = "test") -> dict[str, Any]:
    r = await http.post("/v1/keys", json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@session_loop
async def test_every_route_has_a_decided_role(system: Any) -> None:
    # Catches: a route added without deciding who may call it (it would be admin-only by
    # default, silently), or a role table entry for a route that no longer exists.
    async with httpx.AsyncClient(base_url=system.api_url) as http:
        schema = (await http.get("/openapi.json")).json()
    documented = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    undocumented = {("GET", "/"), ("GET", "/co-quan/{agency_code}")}  # the page: HTML only
    assert documented | undocumented == set(ROUTE_ROLES)
    protected = {route for route, role in ROUTE_ROLES.items() if role is not None}
    assert protected == set(SAMPLES)  # every protected route is exercised below


@session_loop
async def test_open_routes_answer_without_a_key(system: Any) -> None:
    # Catches: the public page, health checks or the docs put behind keys (a load balancer's
    # probe and a citizen would then get 401).
    async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as http:
        for path in ("/", "/healthz", "/readyz", "/docs", "/openapi.json", "/asyncapi.json"):
            r = await http.get(path)
            assert r.status_code == 200, (path, r.status_code)
        unknown = await http.get("/co-quan/KHONGCO")
        assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]


@session_loop
async def test_head_answers_as_get_without_a_body(system: Any) -> None:
    # Catches: HEAD answering 405 (monitors and link checkers use it), a HEAD that skips the
    # role check, or one that sends the body.
    async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as http:
        for path in ("/", "/healthz", "/readyz", "/asyncapi.json"):
            get, head = await http.get(path), await http.head(path)
            assert (head.status_code, head.content) == (200, b""), path
            assert head.headers["content-type"] == get.headers["content-type"], path
        assert (await http.head("/co-quan/KHONGCO")).status_code == 404
        assert (await http.head("/v1/pipeline")).status_code == 401
        ok = await http.head("/v1/pipeline", headers=system.api_headers)
        assert (ok.status_code, ok.content) == (200, b"")


@session_loop
async def test_each_protected_route_needs_a_key_of_its_role(system: Any) -> None:
    # Catches: a route answering without a key or with a wrong/too-weak one, or refusing the
    # role it is documented for (README's table is ROUTE_ROLES).
    async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as http:
        http.headers.update(system.api_headers)
        tokens = {r.name: (await _new_key(http, r.name))["key"] for r in Role}
        throwaway = (await _new_key(http, "viewer", "to revoke"))["id"]
        http.headers.clear()
        for (method, template), (path, body) in SAMPLES.items():
            url = path.replace("{key}", throwaway)
            needed = ROUTE_ROLES[(method, template)]
            assert needed is not None

            call = functools.partial(http.request, method, url, json=body)
            missing = await call(headers={})
            assert missing.status_code == 401, (template, missing.status_code)
            assert "Thiếu khóa API" in missing.json()["detail"]
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = await call(headers=_bearer("mk_00000000_" + "x" * 43))
            assert wrong.status_code == 401, template
            for role in Role:
                if role < needed:
                    weak = await call(headers=_bearer(tokens[role.name]))
                    assert weak.status_code == 403, (template, role.name, weak.status_code)
                    assert f"needs {needed.name}" in weak.json()["detail"]
            ok = await call(headers=_bearer(tokens[needed.name]))
            assert ok.status_code < 400 or ok.status_code == 404, (template, ok.status_code)
            if ok.status_code == 404:
                assert template.endswith(("/events", "/raw", "/ids")) or (
                    template == "/v1/targets/{target_id}"
                )
        # The hierarchy: an admin may read what a viewer may, and X-API-Key works as well.
        by_header = await http.get("/v1/pipeline", headers={"X-API-Key": tokens["admin"]})
        assert by_header.status_code == 200


@session_loop
async def test_a_revoked_key_is_refused_at_once(system: Any, clickhouse: Client) -> None:
    # Catches: a revocation that waits for a cache to expire (or for a merge) before it bites,
    # both through the API and from another writer (`motcua keys revoke` on a server).
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        first = await _new_key(http, "auditor")
        second = await _new_key(http, "auditor")
        for key in (first, second):
            r = await http.get("/v1/dead-letters", headers=_bearer(key["key"]))
            assert r.status_code == 200
        revoked = await http.post(f"/v1/keys/{first['id']}:revoke")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        after = await http.get("/v1/dead-letters", headers=_bearer(first["key"]))
        assert after.status_code == 401
        # Another writer: the API's snapshot is at most its TTL (2 s) old.
        started = time.monotonic()
        KeyStore(clickhouse).revoke(second["id"], "test")

        async def refused() -> bool:
            r = await http.get("/v1/dead-letters", headers=_bearer(second["key"]))
            return r.status_code == 401

        await eventually(refused, timeout=10)
        assert time.monotonic() - started < 4
        listed = {k["id"]: k for k in (await http.get("/v1/keys")).json()}
        assert listed[first["id"]]["revoked_at"] and listed[second["id"]]["revoked_at"]
        again = await http.post(f"/v1/keys/{first['id']}:revoke")
        assert again.status_code == 200  # revoking twice is harmless
        missing = await http.post("/v1/keys/nope:revoke")
        assert missing.status_code == 404


@session_loop
async def test_keys_are_stored_hashed_never_in_clear(system: Any, clickhouse: Client) -> None:
    # Catches: the key (or its secret part) written to the table or returned by the listing.
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        created = await _new_key(http, "viewer", "Báo chí")
        listing = (await http.get("/v1/keys")).text
    token = created["key"]
    assert token.startswith(f"mk_{created['id']}_") and len(token) > 40
    secret = token.split("_", 2)[2]
    rows = clickhouse.query("SELECT * FROM api_keys").result_rows
    assert rows and not any(secret in str(row) or TEST_ADMIN_KEY in str(row) for row in rows)
    assert secret not in listing and TEST_ADMIN_KEY not in listing
    digest = hashlib.sha256(token.encode()).hexdigest()
    stored = clickhouse.query(
        "SELECT name, role FROM api_keys WHERE key_hash = {h:String}", parameters={"h": digest}
    ).result_rows
    assert stored == [("Báo chí", "viewer")]


@session_loop
async def test_openapi_offers_the_key_schemes(system: Any) -> None:
    # Catches: /docs without an Authorize button, or protected operations not marked as such.
    async with httpx.AsyncClient(base_url=system.api_url) as http:
        schema = (await http.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer mk_…",
    }
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    items = schema["paths"]["/v1/metrics/{metric}/items"]["get"]
    assert items["security"] == [{"bearer": []}, {"apiKeyHeader": []}]
    assert "**auditor**" in items["description"]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_bootstrap_key_is_added_once_and_a_revocation_sticks(clickhouse: Client) -> None:
    # Catches: a restart with MOTCUA_BOOTSTRAP_ADMIN_KEY duplicating the key, un-revoking it,
    # or accepting a guessable placeholder.
    store = KeyStore(clickhouse, ttl=0)
    token = "bootstrap-" + os.urandom(16).hex()
    key, added = store.ensure_bootstrap(token)
    assert added and key.role is Role.admin
    assert store.ensure_bootstrap(token) == (key, False)
    assert store.authenticate(token) == key
    store.revoke(key.key_id, "test")
    again, added = store.ensure_bootstrap(token)
    assert not added and again.revoked_at is not None
    assert store.authenticate(token) is None
    with pytest.raises(ValueError, match="at least 32"):
        store.ensure_bootstrap("admin")


def _motcua(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOTCUA_DATA_DIR": str(data)}
    env.pop("MOTCUA_CLICKHOUSE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "motcua.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


_CHECK = """
import sys
from services.api.keys import KeyStore, admin_key_at_start
from core.storage.clickhouse import connect
store = KeyStore(connect(sys.argv[1]))
key = store.authenticate(sys.argv[2])
print(key.role.name if key else "refused")
"""


def _authenticates(data: Path, token: str) -> str:
    # chDB opens one directory per process and this one has the session's: ask a subprocess.
    done = subprocess.run(
        [sys.executable, "-c", _CHECK, f"chdb://{data / 'clickhouse'}", token],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_cli_creates_lists_and_revokes_keys(tmp_path: Path) -> None:
    # Catches: `motcua keys` printing the key more than once (or never), listing it, or a
    # revocation the store does not honour.
    created = _motcua(
        tmp_path, "keys", "create", "--role", "auditor", "--name", "Kiểm toán nhà nước"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("mk_") and "\n" not in token
    key_id = token.split("_")[1]
    assert key_id in created.stderr and "một lần" in created.stderr
    assert _authenticates(tmp_path, token) == "auditor"
    listed = _motcua(tmp_path, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith(key_id))
    assert "auditor" in line and "Kiểm toán nhà nước" in line and line.split()[4] == "-"
    assert token not in listed.stdout and token.split("_", 2)[2] not in listed.stdout
    revoked = _motcua(tmp_path, "keys", "revoke", key_id)
    assert revoked.returncode == 0 and f"revoked {key_id}" in revoked.stdout
    line = next(ln for ln in _motcua(tmp_path, "keys", "list").stdout.splitlines() if key_id in ln)
    assert line.split()[4] != "-"
    assert _authenticates(tmp_path, token) == "refused"
    unknown = _motcua(tmp_path, "keys", "revoke", "nope")
    assert unknown.returncode != 0 and "no API key with id 'nope'" in unknown.stderr


def test_cli_on_a_store_that_motcua_up_holds_says_what_to_do(
    clickhouse: Client, clickhouse_url: str
) -> None:
    # Catches: a raw chDB traceback instead of pointing at POST /v1/keys while `motcua up`
    # (here: this test process, through the `clickhouse` fixture: run alone, the test failed
    # because nothing held the store yet) holds the store.
    env = {**os.environ, "MOTCUA_CLICKHOUSE_URL": clickhouse_url}
    done = subprocess.run(
        [sys.executable, "-m", "motcua.cli", "keys", "list"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "POST /v1/keys" in done.stderr


_FIRST_START = """
import sys
from services.api.keys import KeyStore, admin_key_at_start
from core.storage.clickhouse import connect
from core.storage.migrate import migrate
client = connect(sys.argv[1])
migrate(client)
store = KeyStore(client)
token, generated = admin_key_at_start(store, None)
again, generated_again = admin_key_at_start(store, None)
print(generated, again, generated_again, store.authenticate(token).role.name)
"""


def test_first_start_generates_one_admin_key(tmp_path: Path) -> None:
    # Catches: `motcua up` on an empty store starting with no way in, or minting a new admin key
    # on every start (the earlier ones are not stored in clear, so none can be handed out).
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_START, f"chdb://{tmp_path / 'clickhouse'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["True", "None", "False", "admin"]


async def _read_until(proc: Any, marker: str, timeout: float = 180.0) -> str:
    text = ""
    async with asyncio.timeout(timeout):
        while marker not in text:
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError(f"motcua up ended before {marker!r}:\n{text}")
            text += line.decode()
    return text


@session_loop
async def test_motcua_up_prints_an_admin_key_on_its_first_start_only(tmp_path: Path) -> None:
    # Catches: a first `motcua up` with no way into its own API, the key printed again at every
    # start (or into the log), or a key that does not survive a restart.
    env = {
        **os.environ,
        "MOTCUA_DATA_DIR": str(tmp_path / "data"),
        "MOTCUA_NATS_PORT": str(free_port()),
        "MOTCUA_API_PORT": str(free_port()),
        "MOTCUA_METRICS_INTERVAL": "3600",
        "MOTCUA_METRICS_PLANS_INTERVAL": "3600",
    }
    for name in ("MOTCUA_BOOTSTRAP_ADMIN_KEY", "MOTCUA_NATS_URL", "MOTCUA_CLICKHOUSE_URL"):
        env.pop(name, None)
    api = f"http://127.0.0.1:{env['MOTCUA_API_PORT']}"
    outputs = []
    for _ in range(2):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "motcua.cli",
            "up",
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=(tmp_path / "up.log").open("ab"),
        )
        try:
            out = await _read_until(proc, "Ctrl-C")
            if not outputs:
                out += await _read_until(proc, "`motcua keys`)")
                token = re.search(r"^\s+(mk_\S+)$", out, re.M)
                assert token, out
            async with httpx.AsyncClient(base_url=api) as http:
                assert (await http.get("/v1/pipeline")).status_code == 401
                keyed = await http.get("/v1/pipeline", headers=_bearer(token[1]))
                assert keyed.status_code == 200
            proc.send_signal(signal.SIGINT)
            rest, _ = await asyncio.wait_for(proc.communicate(), 60)
            outputs.append(out + rest.decode())
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert "Khóa API quản trị" in outputs[0] and "Khóa API quản trị" not in outputs[1]
    assert token[1] not in outputs[1] and token[1] not in (tmp_path / "up.log").read_text()


def test_a_read_only_key_store_checks_keys_but_writes_none(clickhouse: Client) -> None:
    # Catches: `motcua api` on the read-only api_ro user failing on a key write with a
    # ClickHouse error (a 500) instead of saying where keys are managed (the routes answer 501).
    writer = KeyStore(clickhouse)
    key, token = writer.create("chỉ đọc", Role.viewer, "test")
    reader = KeyStore(clickhouse, writable=False)
    assert reader.authenticate(token) == key
    with pytest.raises(KeyStoreReadOnly, match="motcua keys"):
        reader.create("x", Role.admin, "test")
    with pytest.raises(KeyStoreReadOnly):
        reader.revoke(key.key_id, "test")
    assert reader.authenticate(token) == key
