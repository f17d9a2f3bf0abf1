"""`motcua up`'s embedded nats-server with authentication (issue 6): integrators publish only for
their own agencies, the services connect as their own users, credentials are printed once.

The session's `nats_server`, `nc` and `system` fixtures stay unauthenticated; these tests start
servers of their own on temporary data dirs. The in-process one shares the session's chDB store
(one engine per process) and keeps to a unique agency code, like every other test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import nats
import pytest
from clickhouse_connect.driver.client import Client
from nats.errors import TimeoutError as NatsTimeout

from core.messaging import nats_auth, nats_users, urls
from core.messaging.nats_server import free_port, nats_server_binary
from core.reference.seed import SEED_FILE
from tests.helpers import eventually, received
from tests.test_pipeline import d, stored

on_session_loop = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[1]
DEPLOY_CONF = ROOT / "deploy" / "nats" / "nats.conf"
DEPLOY_USER = re.compile(
    r"user: (\w+), password: \$\w+"
    r"(?:\s*permissions: \{\s*publish: (\[[^\]]*\])\s*subscribe: (\[[^\]]*\]))?"
)


async def _ignore(_: Exception) -> None:
    """Refused connections and publishes are expected here; the default callback logs each."""


async def connect(url: str, user: str | None = None, password: str | None = None, **kw: Any) -> Any:
    """As an integrator is told to connect: with its user and its own inbox prefix."""
    if user is not None:
        kw.setdefault("inbox_prefix", urls.inbox_prefix(user))
    return await nats.connect(
        url,
        user=user,
        password=password,
        allow_reconnect=False,
        connect_timeout=3,
        error_cb=kw.pop("error_cb", _ignore),
        **kw,
    )


async def connect_when_allowed(url: str, user: str, password: str, **kw: Any) -> Any:
    """A user added to a running server: its SIGHUP reload takes a moment. Until then the server
    refuses it, with -ERR or, when it closes first, a reset connection (seen once in the suite)."""
    for _ in range(100):
        try:
            return await connect(url, user, password, **kw)
        except (nats.errors.Error, ConnectionResetError):
            await asyncio.sleep(0.05)
    raise AssertionError(f"{user} was never allowed in")


async def refused(js: Any, subject: str, data: bytes = b"{}") -> bool:
    """A denied publish is dropped by the server: no PubAck ever comes."""
    try:
        await js.publish(subject, data, timeout=1)
    except NatsTimeout:
        return True
    return False


@pytest.mark.pure
def test_embedded_users_have_the_permissions_of_the_compose_users() -> None:
    # Catches the two configs drifting apart: a permission fixed or widened in
    # deploy/nats/nats.conf and not in the embedded server's users, or the other way round.
    found = {
        name: (json.loads(publish) if publish else None, json.loads(sub) if sub else None)
        for name, publish, sub in DEPLOY_USER.findall(DEPLOY_CONF.read_text())
    }

    def inbox(user: str) -> list[str]:
        return [f"{urls.inbox_prefix(user)}.>"]

    expected: dict[str, tuple[Any, Any]] = {
        name: (list(p), inbox(name)) if p is not None else (None, None)
        for name, p in nats_users.SERVICE_PERMISSIONS.items()
        if name != "simulator"  # embedded only: compose runs no simulator by default
    }
    name, agencies = nats_users.EXAMPLE_INTEGRATOR
    expected[name] = (list(nats_users.integrator_subjects(agencies)), inbox(name))
    assert found == expected


@pytest.mark.pure
def test_first_start_writes_private_files_with_hashes_only_and_a_config_nats_server_accepts(
    tmp_path: Path,
) -> None:
    # Catches a secret readable by other users, a plaintext password in the server config, a
    # config nats-server refuses (a bcrypt hash starts with '$', a variable when unquoted), and
    # a second start that regenerates passwords or prints them again.
    nats_dir = tmp_path / "nats"
    first = nats_auth.prepare(nats_dir)
    assert first.is_first_start and first.first_start is not None
    notice = first.notice("nats://127.0.0.1:4222")
    assert notice and first.first_start.password in notice
    for name in ("credentials.json", "integrators.json", "nats-server.conf"):
        assert stat.S_IMODE((nats_dir / name).stat().st_mode) == 0o600, name
    config = first.config_file.read_text()
    for secret in [*first.passwords.values(), first.first_start.password]:
        assert secret not in config
        assert secret not in (nats_dir / "integrators.json").read_text()
    assert config.count('password: "$2b$11$') == len(nats_users.SERVICE_PERMISSIONS) + 1
    checked = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(first.config_file)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr

    again = nats_auth.prepare(nats_dir)
    assert not again.is_first_start and again.first_start is None
    assert again.notice("nats://127.0.0.1:4222") is None
    assert again.passwords == first.passwords
    assert [i.name for i in nats_users.load_integrators(nats_dir)] == ["integrator_stnmt"]


@pytest.mark.nats
@on_session_loop
async def test_integrator_publishes_for_its_agencies_only_and_its_events_are_stored(
    clickhouse: Client, clickhouse_url: str, tmp_path: Path, agency: str
) -> None:
    # Catches an embedded server that lets anyone in, an integrator publishing for an agency not
    # its own, services that lost the right to do their job under their own users (nothing
    # stored), an integrator added or revoked on disk but not in the running server, and the
    # ingest trusting a payload's agency over the subject it was allowed to publish on.
    from motcua.embedded import embedded
    from motcua.settings import Settings

    settings = Settings(
        clickhouse_url=clickhouse_url,
        data_dir=tmp_path,
        nats_port=free_port(),
        api_port=free_port(),
        metrics_interval=3600.0,
        metrics_plans_interval=3600.0,
        ingest_flush_interval=0.05,
    )
    nats_dir = tmp_path / "nats"
    async with embedded(settings) as running:
        url = running.nats_url
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await connect(url)
        assert running.nats_credentials_notice  # a fresh data dir: its first start

        new = nats_users.create_integrator(nats_dir, "integrator_t", (agency,))
        assert nats_auth.write_config(nats_dir) and nats_auth.reload_running_server(nats_dir)
        violations: list[str] = []

        async def record(exc: Exception) -> None:
            violations.append(str(exc))

        own_inbox = urls.inbox_prefix("integrator_t")
        integrator = await connect_when_allowed(
            url, "integrator_t", new.password, error_cb=record, inbox_prefix=own_inbox
        )
        # No user reads another's inbox: the ingest pulls events there, and PubAcks arrive there.
        for inbox in ("_INBOX.>", f"{urls.inbox_prefix('ingest')}.>", "_INBOX_admin.>"):
            await integrator.subscribe(inbox)
            await integrator.flush()
            await eventually(
                lambda inbox=inbox: any(
                    "permissions violation" in v.lower() and inbox.lower() in v.lower()
                    for v in violations
                )
            )
        js = integrator.jetstream()
        event = received(agency, "AUTH1", d(3), due=d(5, 17))
        ack = await js.publish(
            f"motcua.events.{agency}.dossier.received",
            json.dumps(event).encode(),
            headers={"Nats-Msg-Id": event["event_id"]},
            timeout=5,
        )
        assert ack.stream == "MOTCUA_EVENTS"  # its own inbox still gets its PubAcks
        violations.clear()
        assert await refused(js, "motcua.events.STNMT.dossier.received")
        assert any("permissions violation" in v.lower() for v in violations), violations
        # Allowed subject, another agency in the payload: the ingest's own check refuses it.
        claims_other = received("STNMT", "AUTH2", d(3), due=d(5, 17))
        await js.publish(
            f"motcua.events.{agency}.dossier.received",
            json.dumps(claims_other).encode(),
            timeout=5,
        )

        def dead() -> list[tuple[str, str]]:
            return [
                (str(r[0]), str(r[1]))
                for r in clickhouse.query(
                    "SELECT reason, detail FROM dead_letters FINAL WHERE agency_code = {a:String}",
                    parameters={"a": agency},
                ).result_rows
            ]

        await eventually(lambda: stored(clickhouse, agency) == 1 and len(dead()) == 1)
        ((reason, detail),) = dead()
        assert reason == "agency_mismatch" and "'STNMT'" in detail
        # The API's own connection may read, never publish events.
        assert await refused(running.nats.jetstream(), f"motcua.events.{agency}.dossier.received")

        nats_users.revoke_integrator(nats_dir, "integrator_t")
        assert nats_auth.write_config(nats_dir) and nats_auth.reload_running_server(nats_dir)
        await eventually(lambda: integrator.is_closed or not integrator.is_connected)
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await connect(url, "integrator_t", new.password)
        await integrator.close()


def _motcua_env(data: Path, nats_port: int, api_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "MOTCUA_DATA_DIR": str(data),
        "MOTCUA_NATS_PORT": str(nats_port),
        "MOTCUA_API_PORT": str(api_port),
        "MOTCUA_METRICS_INTERVAL": "3600",
        "MOTCUA_METRICS_PLANS_INTERVAL": "3600",
    }


async def _start_up(env: dict[str, str], log: Path, *args: str) -> Any:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "motcua.cli",
        "up",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=log.open("wb"),
    )


async def _read_until(proc: Any, marker: str, timeout: float = 180.0) -> str:
    text = ""
    async with asyncio.timeout(timeout):
        while marker not in text:
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError(f"motcua up ended before {marker!r}:\n{text}")
            text += line.decode()
    return text


async def _stop(proc: Any, log: Path) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError as timeout:
        # Where it waits: every thread's stack (motcua/cli.py) and the slow stop steps, in its log.
        proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(2)
        proc.kill()
        await proc.wait()
        raise AssertionError(
            f"motcua up did not stop within 60 s:\n{log.read_text()[-20000:]}"
        ) from timeout
    assert proc.returncode == 0, log.read_text()[-5000:]
    return str(rest.decode())


def _motcua(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "motcua.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.nats
@on_session_loop
async def test_motcua_up_prints_credentials_on_its_first_start_only_and_they_work(
    tmp_path: Path,
) -> None:
    # Catches credentials that are never shown (no integrator could connect), shown again at
    # every start or leaked into the logs, an `integrators add` that a running `motcua up` does
    # not pick up, an unknown agency code accepted, a simulator that may not publish, and
    # users lost between two starts.
    data = tmp_path / "data"
    env = _motcua_env(data, free_port(), free_port())
    url = f"nats://127.0.0.1:{env['MOTCUA_NATS_PORT']}"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    clients: list[Any] = []
    proc = await _start_up(env, first_log, "--simulate", "--history-days", "1", "--rate", "2")
    try:
        first = await _read_until(proc, "motcua integrators add")
        password = re.search(r"user integrator_stnmt  password (\S+)", first)
        assert password, first
        clients.append(await connect(url, "integrator_stnmt", password[1]))
        js = clients[-1].jetstream()
        event = received("STNMT", f"UP-{uuid.uuid4().hex[:8]}", d(3), due=d(5, 17))
        subject = "motcua.events.STNMT.dossier.received"
        assert (await js.publish(subject, json.dumps(event).encode(), timeout=5)).seq

        add = ("integrators", "add")
        unknown = await asyncio.to_thread(_motcua, env, *add, "x", "--agency", "NOPE")
        assert unknown.returncode != 0 and "unknown agency code(s) NOPE" in unknown.stderr
        added = await asyncio.to_thread(_motcua, env, *add, "skhdt", "--agency", "SKHDT")
        assert added.returncode == 0, added.stderr
        assert "reloaded" in added.stdout
        added_password = re.search(r"user skhdt  password (\S+)", added.stdout)
        assert added_password, added.stdout
        clients.append(await connect_when_allowed(url, "skhdt", added_password[1]))
        assert await refused(clients[-1].jetstream(), subject)
        # `catalog load` reaches the local `motcua up` as its admin user.
        loaded = await asyncio.to_thread(_motcua, env, "catalog", "load", str(SEED_FILE))
        assert loaded.returncode == 0, loaded.stderr
        assert "agencies: 0 published, 75 already in the stream" in loaded.stdout
        listed = await asyncio.to_thread(_motcua, env, "integrators", "list")
        assert re.findall(r"^(\S+)\t(\S+)\t", listed.stdout, re.M) == [
            ("integrator_stnmt", "STNMT"),
            ("skhdt", "SKHDT"),
        ]
        # A leaked password: rotated while running, the old one is refused, the new one works.
        rotated = await asyncio.to_thread(_motcua, env, "integrators", "rotate", "skhdt")
        assert rotated.returncode == 0 and "reloaded" in rotated.stdout, rotated.stderr
        new_password = re.search(r"user skhdt  password (\S+)", rotated.stdout)
        assert new_password and new_password[1] != added_password[1], rotated.stdout

        async def old_refused() -> bool:
            try:
                old = await connect(url, "skhdt", added_password[1])
            except nats.errors.Error as exc:
                return "Authorization Violation" in str(exc)
            await old.close()
            return False

        await eventually(old_refused)
        clients.append(await connect_when_allowed(url, "skhdt", new_password[1]))
        added_password = new_password  # and it is still the one after a restart (below)

        # The simulator's events and the integrator's are consumed and acked by the ingest.
        creds = json.loads((data / "nats" / "credentials.json").read_text())["users"]
        clients.append(await connect(url, "api", creds["api"]["password"]))
        api_js = clients[-1].jetstream()

        async def ingested() -> bool:
            stream = await api_js.stream_info("MOTCUA_EVENTS")
            consumer = await api_js.consumer_info("MOTCUA_EVENTS", "motcua-ingest")
            return (
                stream.state.messages > 10  # the simulator's backfill and ours
                and consumer.num_pending == 0
                and consumer.num_ack_pending == 0
            )

        await eventually(ingested, timeout=120)
        for client in clients:
            await client.close()
        clients = []
        first += await _stop(proc, first_log)

        proc = await _start_up(env, second_log)
        second = await _read_until(proc, "Ctrl-C")
        clients.append(await connect(url, "skhdt", added_password[1]))
        second += await _stop(proc, second_log)
    finally:
        for client in clients:
            await client.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    notice = "NATS yêu cầu xác thực"
    assert notice in first and notice not in second
    assert password[1] not in second
    logs = first_log.read_text() + second_log.read_text()
    service_passwords = [u["password"] for u in creds.values()]
    for secret in [password[1], added_password[1], *service_passwords]:
        assert secret not in logs
    for secret in service_passwords:
        assert secret not in first + second
