"""The deployment files agree with each other and with the code.

Docker is not available where these run, so nothing here starts a container: the tests check
what can be checked statically (compose structure, variables, provisioning keys, the image
recipe) and run the real nats-server on the NATS config.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.errors import TimeoutError as NatsTimeout

from core.messaging.nats_server import free_port, nats_server_binary
from core.messaging.streams import ensure_streams
from core.messaging.urls import inbox_prefix
from schemas.subjects import NATS_MAX_PAYLOAD

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the compose and Grafana files")

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
NATS_CONF = DEPLOY / "nats" / "nats.conf"
ENV_EXAMPLE = DEPLOY / "env.example"
USERS_SCRIPT = DEPLOY / "clickhouse" / "initdb" / "01_users.sh"
DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "clickhouse.yaml"
DASHBOARD_PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "provider.yaml"

APP_COMMANDS = {
    "migrate": ["motcua", "migrate"],
    "ingest": ["motcua", "ingest"],
    "metrics": ["motcua", "metrics"],
    "api": ["motcua", "api"],
}
INFRA = {"nats", "clickhouse", "grafana"}
CLUSTER_DIR = DEPLOY / "clickhouse" / "cluster"
KEEPERS = ("keeper-1", "keeper-2", "keeper-3")
CLICKHOUSE_NODES = ("clickhouse-01-1", "clickhouse-01-2", "clickhouse-02-1", "clickhouse-02-2")
NATS_NODES = ("nats-1", "nats-2", "nats-3")
CLUSTER_SERVICES = (
    *KEEPERS,
    *CLICKHOUSE_NODES,
    *NATS_NODES,
    *(f"{name}-cluster" for name in APP_COMMANDS),
)

# ${VAR}, ${VAR:-default}, ${VAR:?message}; `$$` is compose's escaped literal dollar.
COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?")
NATS_VAR = re.compile(r"\$([A-Z_][A-Z0-9_]*)")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


def env_example_names() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def nats_conf_variables() -> set[str]:
    # Comments and quoted strings ("$JS.API.>") hold no variable references.
    code = "\n".join(ln.split("#", 1)[0] for ln in NATS_CONF.read_text().splitlines())
    return set(NATS_VAR.findall(re.sub(r'"[^"]*"', "", code)))


def service_env(compose: dict[str, Any], name: str) -> dict[str, str]:
    env: dict[str, str] = compose["services"][name].get("environment", {})
    return env


def fake_env(names: set[str]) -> dict[str, str]:
    # A leading letter: nats-server would parse an all-digit value as a number and refuse it.
    return {**os.environ, **{n: "p" + os.urandom(12).hex() for n in names}}


def run_users_script(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the ClickHouse init script with a fake `clickhouse` that captures the SQL it sends."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    rendered = tmp_path / "rendered.sql"
    rendered.unlink(missing_ok=True)
    (fake_bin / "clickhouse").write_text(f"#!/bin/sh\ncat > {rendered}\n")
    (fake_bin / "clickhouse").chmod(0o755)
    full_env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", **env}
    result = subprocess.run(
        ["bash", str(USERS_SCRIPT)], env=full_env, capture_output=True, text=True
    )
    return result, rendered


USERS_ENV = {
    "CLICKHOUSE_USER": "motcua_admin",
    "CLICKHOUSE_PASSWORD": "x",
    "CLICKHOUSE_DB": "motcua",
    "CH_GRAFANA_PASSWORD": "it's\\tricky",
    "CH_API_PASSWORD": "0a1b2c",
    "CH_INGEST_PASSWORD": "1b2c3d",
    "CH_METRICS_PASSWORD": "2c3d4e",
}

# Splits the rendered script into statements and has chDB's parser format each one.
PARSE_WITH_CHDB = r"""
import sys
import chdb
text = "\n".join(ln for ln in open(sys.argv[1]) if not ln.startswith("--"))
for statement in filter(str.strip, text.split(";")):
    literal = statement.strip().replace("\\", "\\\\").replace("'", "\\'")
    chdb.query(f"SELECT formatQuery('{literal}')")
"""


def default_services(compose: dict[str, Any]) -> dict[str, Any]:
    """What a plain `docker compose up` starts: the services of no profile."""
    return {n: s for n, s in compose["services"].items() if "profiles" not in s}


@pytest.mark.pure
def test_compose_defines_every_service(compose: dict[str, Any]) -> None:
    # Catches a YAML indentation slip that silently drops or nests a service, and a service of
    # the cluster profile leaking into a plain `docker compose up`.
    assert set(default_services(compose)) == INFRA | set(APP_COMMANDS)
    assert set(compose["services"]) - set(default_services(compose)) == set(CLUSTER_SERVICES)


@pytest.mark.pure
def test_app_services_run_their_own_process_from_this_image(compose: dict[str, Any]) -> None:
    # Catches a copy-pasted service running the wrong process, a service built from another
    # context, or a command that is not the package's console script.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, command in APP_COMMANDS.items():
        service = compose["services"][name]
        assert service["command"] == command, name
        assert service["build"] == "." and service["image"] == "motcua-monitor:local", name
        assert command[0] in scripts
    assert compose["services"]["migrate"]["restart"] == "no"


@pytest.mark.pure
def test_long_running_services_have_a_healthcheck(compose: dict[str, Any]) -> None:
    # Catches a service that can never become healthy (nothing depending on it would start) or
    # a check that probes the wrong port or process.
    for name in INFRA | (set(APP_COMMANDS) - {"migrate"}):
        assert compose["services"][name]["healthcheck"]["test"], name
    api = compose["services"]["api"]
    assert "http://127.0.0.1:8000/readyz" in " ".join(api["healthcheck"]["test"])
    assert service_env(compose, "api")["MOTCUA_API_PORT"] == "8000"
    assert service_env(compose, "api")["MOTCUA_API_HOST"] == "0.0.0.0"
    for name in ("ingest", "metrics"):
        test = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert f"motcua\\x00{name}\\x00" in test, name


@pytest.mark.pure
def test_processes_start_after_migrate_and_migrate_after_its_stores(
    compose: dict[str, Any],
) -> None:
    # Catches ingest/api/metrics starting before the streams and tables exist, or migrate
    # racing a ClickHouse that is still running its init scripts.
    migrate_deps = compose["services"]["migrate"]["depends_on"]
    assert migrate_deps == {
        "nats": {"condition": "service_healthy"},
        "clickhouse": {"condition": "service_healthy"},
    }
    for name in ("ingest", "metrics", "api"):
        deps = compose["services"][name]["depends_on"]
        assert deps["migrate"] == {"condition": "service_completed_successfully"}, name


@pytest.mark.pure
def test_app_services_never_fall_back_to_embedded_stores(compose: dict[str, Any]) -> None:
    # Catches a service missing MOTCUA_NATS_URL or MOTCUA_CLICKHOUSE_URL: the settings would then
    # start an embedded nats-server or chDB inside the container, and data would go nowhere.
    for name in APP_COMMANDS:
        env = service_env(compose, name)
        assert re.fullmatch(r"nats://\w+:\$\{\w+:\?[^}]+\}@nats:4222", env["MOTCUA_NATS_URL"]), name
        assert env["MOTCUA_CLICKHOUSE_URL"].startswith("http://")
        assert env["MOTCUA_CLICKHOUSE_URL"].endswith("@clickhouse:8123/motcua"), name
    # The API reads with the read-only user; only migrate holds NATS admin rights.
    assert service_env(compose, "api")["MOTCUA_CLICKHOUSE_URL"].startswith("http://api_ro:")
    admins = [
        n
        for n in APP_COMMANDS
        if service_env(compose, n)["MOTCUA_NATS_URL"].startswith("nats://admin:")
    ]
    assert admins == ["migrate"]
    assert service_env(compose, "ingest")["MOTCUA_NATS_URL"].startswith("nats://ingest:")


@pytest.mark.pure
def test_every_compose_variable_is_documented_and_secrets_fail_loudly() -> None:
    # Catches a variable added to compose but not to deploy/env.example (an operator cannot know
    # to set it), and a secret without `:?` that would silently become an empty password.
    text = COMPOSE.read_text(encoding="utf-8")
    used = COMPOSE_VAR.findall(text)
    documented = env_example_names()
    assert used, "no ${VAR} found: did the pattern or the file change?"
    for name, operator in used:
        assert name in documented, f"{name} is used in docker-compose.yml but not in env.example"
        if name.endswith("_PASSWORD"):
            assert operator == ":?", f"{name} must be ${{{name}:?...}} so a missing one fails"
    assert {n for n, _ in used} == set(documented), "env.example lists variables compose ignores"


@pytest.mark.pure
def test_env_example_holds_no_secret() -> None:
    # Catches a real or guessable password committed in the example, which would also defeat the
    # `:?` check (a copied-but-unedited .env must not start).
    for name, value in env_example_names().items():
        if name.endswith("_PASSWORD"):
            assert value == "", f"{name} must be empty in env.example"


@pytest.mark.pure
def test_each_container_receives_the_secrets_its_config_files_reference(
    compose: dict[str, Any],
) -> None:
    # Catches a user added to nats.conf (or a password referenced by Grafana provisioning or the
    # ClickHouse init script) whose variable is not passed to that container: it would refuse
    # to start, or provision an empty password.
    assert nats_conf_variables() <= set(service_env(compose, "nats"))
    datasource_vars = set(re.findall(r"\$\{(\w+)\}", DATASOURCE.read_text()))
    assert datasource_vars and datasource_vars <= set(service_env(compose, "grafana"))
    script_vars = set(re.findall(r'"\$\{(CH_\w+):\?', USERS_SCRIPT.read_text()))
    assert script_vars == {
        "CH_GRAFANA_PASSWORD",
        "CH_API_PASSWORD",
        "CH_INGEST_PASSWORD",
        "CH_METRICS_PASSWORD",
    }
    assert script_vars <= set(service_env(compose, "clickhouse"))


@pytest.mark.pure
def test_datasource_has_the_keys_the_plugin_backend_reads(compose: dict[str, Any]) -> None:
    # Catches the plugin's own e2e mistake (`database:`, which the backend never reads), a
    # non-string host or username (the backend type-asserts them and fails), a port that does
    # not match the protocol, and a uid the generated dashboards would not find.
    (ds,) = load_yaml(DATASOURCE)["datasources"]
    assert ds["uid"] == "clickhouse" and ds["type"] == "grafana-clickhouse-datasource"
    data = ds["jsonData"]
    assert isinstance(data["host"], str) and data["host"] in compose["services"]
    assert {"native": 9000, "http": 8123}[data["protocol"]] == data["port"]
    assert data["username"] == "grafana_ro" and data["defaultDatabase"] == "motcua"
    assert "database" not in data
    assert ds["secureJsonData"]["password"] == "${CH_GRAFANA_PASSWORD}"
    ch_env = service_env(compose, "clickhouse")
    assert ch_env["CLICKHOUSE_DB"] == data["defaultDatabase"]


@pytest.mark.pure
def test_grafana_mounts_what_the_dashboard_provider_reads(compose: dict[str, Any]) -> None:
    # Catches a provider path or a volume target drifting apart: Grafana would show no dashboards.
    (provider,) = load_yaml(DASHBOARD_PROVIDER)["providers"]
    assert provider["type"] == "file" and provider["options"]["foldersFromFilesStructure"]
    # "source:target[:mode]" → {source: target}
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    plugin = service_env(compose, "grafana")["GF_PLUGINS_PREINSTALL_SYNC"]
    assert plugin.split("@")[0] == load_yaml(DATASOURCE)["datasources"][0]["type"]


@pytest.mark.pure
def test_image_runs_as_non_root_and_ships_every_package() -> None:
    # Catches a container running as root, and a new top-level package listed in pyproject but
    # not copied into the image (the console script would fail to import it).
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["motcua", "api"\]$', dockerfile, flags=re.M)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, flags=re.M), package


@pytest.mark.pure
def test_clickhouse_users_script_renders_read_only_users(tmp_path: Path) -> None:
    # Catches a broken init script (quoting, a missing user, readonly lost, the setting Grafana's
    # driver changes on every query locked) and one that runs without its passwords.
    result, rendered = run_users_script(tmp_path, **USERS_ENV)
    assert result.returncode == 0, result.stderr
    sql = rendered.read_text()
    assert "readonly = 1" in sql and "max_execution_time = 60 MAX 300 CHANGEABLE_IN_READONLY" in sql
    assert "GRANT SELECT ON `motcua`.* TO motcua_reader;" in sql
    assert "BY 'it\\'s\\\\tricky'" in sql and "BY '0a1b2c'" in sql
    assert "GRANT motcua_reader TO api_ro;" in sql

    # issue 14, finding 2: each process its own user and only what it uses
    statements = [" ".join(x.split()) for x in sql.split(";")]
    grants = {x for x in statements if x.startswith(("GRANT", "REVOKE"))}
    assert "GRANT motcua_board_reader TO grafana_ro" in grants
    assert "REVOKE SELECT ON `motcua`.api_keys FROM motcua_board_reader" in grants
    assert "REVOKE SELECT(raw) ON `motcua`.dead_letters FROM motcua_board_reader" in grants
    assert "GRANT SELECT, INSERT ON `motcua`.* TO motcua_ingest_writer" in grants
    assert "REVOKE SELECT, INSERT ON `motcua`.api_keys FROM motcua_ingest_writer" in grants
    assert "GRANT motcua_ingest_writer TO motcua_ingest" in grants
    assert "GRANT motcua_metrics_writer TO motcua_metrics" in grants
    # nothing but the admin may create, alter or drop anything, or manage access
    for statement in grants:
        assert not re.search(r"\b(ALL|CREATE|DROP TABLE|TRUNCATE|ACCESS|USER)\b", statement), (
            statement
        )
    profiles = {x.split()[5]: x for x in statements if x.startswith("CREATE SETTINGS PROFILE")}
    for name in ("motcua_readonly", "motcua_boards"):  # readers: bounded rows and concurrency
        assert "readonly = 1" in profiles[name] and "max_result_rows" in profiles[name]
        assert "max_concurrent_queries_for_user" in profiles[name]

    without_api_password = {k: v for k, v in USERS_ENV.items() if k != "CH_API_PASSWORD"}
    result, rendered = run_users_script(tmp_path, **without_api_password)
    assert result.returncode != 0 and "CH_API_PASSWORD" in result.stderr
    assert not rendered.exists()


@pytest.mark.pure
def test_only_migrate_connects_to_clickhouse_as_its_owner(compose: dict[str, Any]) -> None:
    # Catches (issue 14, finding 2): ingest and metrics writing as motcua_admin, the user with
    # DDL and access management.
    users = {
        name: re.sub(r"^http://([^:]+):.*$", r"\1", env["MOTCUA_CLICKHOUSE_URL"])
        for name in APP_COMMANDS
        if "MOTCUA_CLICKHOUSE_URL" in (env := service_env(compose, name))
    }
    assert users == {
        "migrate": "motcua_admin",
        "ingest": "motcua_ingest",
        "metrics": "motcua_metrics",
        "api": "api_ro",
    }


@pytest.mark.clickhouse
def test_clickhouse_users_sql_parses(tmp_path: Path) -> None:
    # Catches SQL the server would reject at first start. chDB refuses to execute CREATE USER,
    # but its parser is the server's, and formatQuery fails on a syntax error. A subprocess, so
    # this chDB engine never meets the one the other ClickHouse tests open.
    result, rendered = run_users_script(tmp_path, **USERS_ENV)
    assert result.returncode == 0, result.stderr
    subprocess.run([sys.executable, "-c", PARSE_WITH_CHDB, str(rendered)], check=True, timeout=120)


@pytest.mark.pure
def test_nats_config_is_accepted_by_nats_server() -> None:
    # Catches a syntax error, a bad permission block or an unknown option in nats.conf: the
    # nats container would exit at start and nothing downstream would run.
    result = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(NATS_CONF)],
        env=fake_env(nats_conf_variables()),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.pure
def test_the_nats_payload_limit_is_the_contracts() -> None:
    # Catches (issue 14, finding 5): compose's server taking messages of any size up to the
    # 1 MiB default, or a limit that drifted from the one the embedded server gets.
    limits = re.findall(r"^max_payload:\s*(\d+)\s*$", NATS_CONF.read_text(), re.MULTILINE)
    assert limits == [str(NATS_MAX_PAYLOAD)]


@pytest.mark.nats
async def test_nats_users_can_do_their_job_and_nothing_else(tmp_path: Path) -> None:
    # Catches a permission change that breaks a role (ingest cannot ack, an integrator cannot get
    # its PubAck) or widens one (an integrator publishing for another agency, the API publishing
    # events). Denied publishes surface only as PubAck timeouts, so nothing else would notice.
    port = free_port()
    conf = (
        NATS_CONF.read_text()
        .replace("/data/jetstream", str(tmp_path / "js"))
        .replace("0.0.0.0:4222", f"127.0.0.1:{port}")
        .replace("http: 127.0.0.1:8222", f"http: 127.0.0.1:{free_port()}")
    )
    (tmp_path / "nats.conf").write_text(conf)
    env = fake_env(nats_conf_variables())
    server = subprocess.Popen(
        [nats_server_binary(), "-c", str(tmp_path / "nats.conf")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    async def connect(user: str, variable: str) -> Any:
        for _ in range(100):
            try:
                return await nats.connect(
                    f"nats://127.0.0.1:{port}",
                    user=user,
                    password=env[variable],
                    allow_reconnect=False,
                    error_cb=_ignore,
                    inbox_prefix=inbox_prefix(user),  # as every motcua process and integrator
                )
            except Exception:
                await asyncio.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    async def denied(js: Any, subject: str) -> bool:
        try:
            await js.publish(subject, b"{}", timeout=0.5)
        except NatsTimeout:
            return True
        return False

    clients: list[Any] = []

    async def connect_as(user: str, variable: str) -> Any:
        clients.append(await connect(user, variable))
        return clients[-1]

    try:
        admin = await connect_as("admin", "NATS_ADMIN_PASSWORD")
        integrator = await connect_as("integrator_stnmt", "NATS_INTEGRATOR_STNMT_PASSWORD")
        ingest = await connect_as("ingest", "NATS_INGEST_PASSWORD")
        api = await connect_as("api", "NATS_API_PASSWORD")
        metrics = await connect_as("metrics", "NATS_METRICS_PASSWORD")
        await ensure_streams(admin.jetstream())

        ijs = integrator.jetstream()
        assert (await ijs.publish("motcua.events.STNMT.dossier.received", b"{}", timeout=2)).seq
        assert await denied(ijs, "motcua.events.KHAC.dossier.received")

        gjs = ingest.jetstream()
        sub = await gjs.pull_subscribe("motcua.events.>", durable="t", stream="MOTCUA_EVENTS")
        (msg,) = await sub.fetch(1, timeout=2)
        await msg.ack_sync(timeout=2)
        assert (await gjs.publish("motcua.dlq.STNMT", b"x", timeout=2)).stream == "MOTCUA_DLQ"
        assert await denied(gjs, "motcua.events.STNMT.dossier.received")
        # issue 14, finding 2: the ingest's JetStream API is its consumers', nothing more
        for api_call in (
            "$JS.API.STREAM.DELETE.MOTCUA_EVENTS",
            "$JS.API.STREAM.PURGE.MOTCUA_EVENTS",
            "$JS.API.STREAM.UPDATE.MOTCUA_EVENTS",
            "$JS.API.CONSUMER.DELETE.MOTCUA_EVENTS.t",
            "$JS.API.STREAM.CREATE.STOLEN",
        ):
            with pytest.raises(NatsTimeout):
                await ingest.request(api_call, b"{}", timeout=0.5)

        ajs = api.jetstream()
        assert (await ajs.stream_info("MOTCUA_EVENTS")).state.messages == 1
        assert (await ajs.consumer_info("MOTCUA_EVENTS", "t")).num_ack_pending == 0  # kept
        assert await denied(ajs, "motcua.events.STNMT.dossier.received")
        assert await denied(ajs, "motcua.alerts.STNMT")

        mjs = metrics.jetstream()
        ack = await mjs.publish("motcua.alerts.STNMT", b"{}", headers={"Nats-Msg-Id": "a#1"})
        assert ack.stream == "MOTCUA_ALERTS"
        assert await denied(mjs, "motcua.events.STNMT.dossier.received")
        assert await denied(mjs, "motcua.dlq.STNMT")

        # No user reads another's inbox (where the ingest's pulled events and everyone's
        # PubAcks arrive), and one with the default inbox gets no PubAck.
        spied: list[Any] = []

        async def spy(msg: Any) -> None:
            spied.append(msg)

        for inbox in ("_INBOX.>", f"{inbox_prefix('ingest')}.>"):
            await integrator.subscribe(inbox, cb=spy)
        await integrator.flush()
        await gjs.publish("motcua.dlq.STNMT", b"y", timeout=2)  # a PubAck to the ingest
        assert (await ijs.publish("motcua.events.STNMT.dossier.received", b"{}", timeout=2)).seq
        (msg,) = await sub.fetch(1, timeout=2)  # an event pulled into the ingest's inbox
        await msg.ack_sync(timeout=2)
        await integrator.flush()
        assert spied == []
        plain = await nats.connect(
            f"nats://127.0.0.1:{port}",
            user="integrator_stnmt",
            password=env["NATS_INTEGRATOR_STNMT_PASSWORD"],
            allow_reconnect=False,
            error_cb=_ignore,
        )
        clients.append(plain)
        assert await denied(plain.jetstream(), "motcua.events.STNMT.dossier.received")
    finally:
        for client in clients:
            await client.close()
        server.terminate()
        server.wait(timeout=10)


async def _ignore(_: Exception) -> None:
    """Permission violations are expected above; the default callback would log each one."""


@pytest.mark.pure
def test_metrics_and_api_read_the_same_plan_folder(compose: dict[str, Any]) -> None:
    # Catches: the API showing other targets than the metrics service evaluates (one of them
    # without the folder), or a mount of a folder that is not in the repository.
    for name in ("metrics", "api"):
        env = service_env(compose, name)
        mounts = compose["services"][name].get("volumes", [])
        assert f"./deploy/plans:{env['MOTCUA_PLANS_DIR']}:ro" in mounts, name
    assert (ROOT / "deploy" / "plans").is_dir()


@pytest.mark.pure
def test_only_nats_is_published_beyond_the_host_by_default(compose: dict[str, Any]) -> None:
    # Catches (issue 14, finding 11): the API and Grafana published on every interface with no
    # TLS in front, or NATS monitoring (server state, connections) open to the whole network.
    # Integrators reach NATS from other machines, so only its client port is published wide.
    published = {
        name: service.get("ports", [])
        for name, service in default_services(compose).items()
        if service.get("ports")
    }
    assert published == {
        "nats": ["${NATS_HOST_PORT:-4222}:4222"],
        "grafana": ["${GRAFANA_HOST_IP:-127.0.0.1}:${GRAFANA_HOST_PORT:-3000}:3000"],
        "api": ["${API_HOST_IP:-127.0.0.1}:${API_HOST_PORT:-8000}:8000"],
    }
    assert re.search(r"^http: 127\.0\.0\.1:8222$", NATS_CONF.read_text(), re.M)


# --- the cluster profile (docker compose --profile cluster; not run here: no Docker) ----------


def xml_root(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> repository path of a service's ./ bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = source
    return mounts


@pytest.mark.pure
def test_cluster_profile_services_have_their_config_files(compose: dict[str, Any]) -> None:
    # Catches a cluster service mounting a file that is not in the repository (Docker would
    # create an empty directory in its place and the server would not start), a server without
    # its macros or cluster definition, or a NATS node started on another node's config.
    services = compose["services"]
    for name in CLUSTER_SERVICES:
        assert services[name]["profiles"] == ["cluster"], name
        for source in bind_mounts(services[name]).values():
            assert (ROOT / source).exists(), f"{name}: {source}"
    for name in CLICKHOUSE_NODES:
        mounts = bind_mounts(services[name])
        config = "/etc/clickhouse-server/config.d/"
        assert (
            mounts[config + "macros.xml"] == f"./deploy/clickhouse/cluster/macros-{name[11:]}.xml"
        )
        assert mounts[config + "cluster.xml"] == "./deploy/clickhouse/cluster/cluster.xml"
        assert "/etc/clickhouse-server/users.d/cluster-profile.xml" in mounts
        assert services[name]["hostname"] == name
    for name in KEEPERS:
        mounts = bind_mounts(services[name])
        keeper_config = "/etc/clickhouse-keeper/keeper_config.xml"
        assert mounts[keeper_config] == f"./deploy/clickhouse/cluster/{name}.xml"
    for name in NATS_NODES:
        assert services[name]["command"] == ["--config", f"/etc/nats/cluster/{name}.conf"]
        assert bind_mounts(services[name])["/etc/nats"] == "./deploy/nats"
        assert (NATS_CONF.parent / "cluster" / f"{name}.conf").is_file(), name
    for path in CLUSTER_DIR.glob("*.xml"):
        xml_root(path)  # well-formed: the server refuses a config it cannot parse


@pytest.mark.pure
def test_macros_are_unique_per_replica_and_match_remote_servers() -> None:
    # Catches two servers claiming the same replica (Keeper would refuse the second, or both
    # would write one replica's parts), and a server whose shard macro is not the shard
    # remote_servers puts it in (its rows would be read as another shard's).
    root = xml_root(CLUSTER_DIR / "cluster.xml")
    cluster = root.find("remote_servers/motcua")
    assert cluster is not None and cluster.find("secret") is not None
    shards = cluster.findall("shard")
    assert len(shards) == 2
    placed = {}
    for number, shard in enumerate(shards, start=1):
        assert shard.findtext("internal_replication") == "true"
        for replica in shard.findall("replica"):
            assert replica.findtext("port") == "9000"
            placed[replica.findtext("host")] = f"{number:02d}"
    assert set(placed) == set(CLICKHOUSE_NODES)
    seen = set()
    for host, shard in placed.items():
        macros = xml_root(CLUSTER_DIR / f"macros-{host[11:]}.xml").find("macros")
        assert macros is not None
        assert macros.findtext("shard") == shard, host
        # unique across the cluster: the tables every server holds share one replica set
        assert macros.findtext("replica") == host
        seen.add(macros.findtext("replica"))
    assert len(seen) == len(CLICKHOUSE_NODES)


@pytest.mark.pure
def test_keepers_form_one_quorum_that_every_server_uses(compose: dict[str, Any]) -> None:
    # Catches a keeper missing from another's raft configuration (two quorums, or none), a
    # duplicated server_id, and servers pointed at a keeper port nothing listens on.
    for number, name in enumerate(KEEPERS, start=1):
        keeper = xml_root(CLUSTER_DIR / f"{name}.xml").find("keeper_server")
        assert keeper is not None
        assert keeper.findtext("server_id") == str(number)
        assert keeper.findtext("tcp_port") == "9181"
        raft = [
            (s.findtext("id"), s.findtext("hostname"), s.findtext("port"))
            for s in keeper.findall("raft_configuration/server")
        ]
        assert raft == [(str(i), k, "9234") for i, k in enumerate(KEEPERS, start=1)], name
    nodes = xml_root(CLUSTER_DIR / "cluster.xml").findall("zookeeper/node")
    assert [(n.findtext("host"), n.findtext("port")) for n in nodes] == [
        (k, "9181") for k in KEEPERS
    ]
    for name in CLICKHOUSE_NODES:
        for keeper in KEEPERS:
            assert compose["services"][name]["depends_on"][keeper] == {
                "condition": "service_healthy"
            }


@pytest.mark.pure
def test_cluster_processes_are_pointed_at_the_cluster(compose: dict[str, Any]) -> None:
    # Catches a cluster process migrating a single server's schema onto the cluster (no
    # MOTCUA_CLICKHOUSE_CLUSTER), naming a cluster remote_servers does not define, knowing one
    # NATS server only, or declaring streams of one copy on a three-node NATS.
    defined = {c.tag for c in xml_root(CLUSTER_DIR / "cluster.xml").find("remote_servers") or []}
    for name, command in APP_COMMANDS.items():
        service = compose["services"][f"{name}-cluster"]
        assert service["command"] == command
        env = service["environment"]
        assert env["MOTCUA_CLICKHOUSE_CLUSTER"] in defined, name
        assert env["MOTCUA_STREAM_REPLICAS"] == "3", name
        hosts = re.findall(r"@([\w-]+):4222", env["MOTCUA_NATS_URL"])
        assert hosts == list(NATS_NODES), name
        single = service_env(compose, name)
        user = single["MOTCUA_CLICKHOUSE_URL"].split(":")[1]
        assert env["MOTCUA_CLICKHOUSE_URL"].split(":")[1] == user, name  # the same ClickHouse user
        host = re.sub(r"^.*@([\w-]+):8123/motcua$", r"\1", env["MOTCUA_CLICKHOUSE_URL"])
        assert host in CLICKHOUSE_NODES, name
    migrate = compose["services"]["migrate-cluster"]
    assert set(migrate["depends_on"]) == set(NATS_NODES) | set(CLICKHOUSE_NODES)


@pytest.mark.pure
def test_compose_file_follows_the_compose_specification() -> None:
    # Catches a key compose would refuse or ignore (a misspelt `profiles`, a healthcheck or
    # depends_on of the wrong shape), checked against the compose-spec JSON schema that
    # check-jsonschema vendors (not a project dependency: skipped where it is not installed).
    pytest.importorskip("check_jsonschema")
    import json
    from importlib import resources

    import jsonschema

    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    jsonschema.validate(load_yaml(COMPOSE), schema)
