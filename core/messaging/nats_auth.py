"""Who may connect to the embedded nats-server (`motcua up`), and what each user may publish.

The users and permissions are those of deploy/nats/nats.conf (compose), from one source here:
SERVICE_PERMISSIONS, with a test holding nats.conf to the same lists. Differences from compose:
the users live in the server's global account rather than MOTCUA, so a data dir from before
authentication keeps its streams; the server config holds bcrypt hashes only; and there is a
`simulator` user allowed every agency's events, because `motcua up --simulate` plays every
integrator at once (it holds no right the admin user, stored beside it, does not already have).

Files under <data dir>/nats/, mode 0600:
- credentials.json: the services' own passwords (plaintext: this process connects with them)
  with their hashes; written on first start, which is also when the credentials are printed.
- integrators.json: each integrator's name, agency codes and bcrypt hash. An integrator's
  password is printed once, when it is created, and stored nowhere.
- nats-server.conf: rendered from both at every start and by `motcua integrators add|revoke`,
  which then ask a running server to reload it (SIGHUP).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import secrets
import signal
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import bcrypt

from core.messaging.nats_server import EmbeddedNats, server_config
from core.private import write_private
from schemas.subjects import (
    ALERTS_SUBJECTS,
    DLQ_PREFIX,
    DLQ_STREAM,
    EVENTS_PREFIX,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    REFERENCE_STREAM,
)

CREDENTIALS_FILE = "credentials.json"
INTEGRATORS_FILE = "integrators.json"
CONFIG_FILE = "nats-server.conf"
PID_FILE = "nats-server.pid"

# nats-server's own tool (`nats server passwd`) defaults to cost 11: ~0.1 s per connection.
BCRYPT_COST = 11


def inbox_prefix(user: str) -> str:
    """Where a user's JetStream PubAcks, fetched messages and request replies arrive. Each user
    has its own: with one `_INBOX.>` for everyone, any integrator could subscribe there and read
    the events the ingest pulled and every other user's PubAcks. nats-py: `inbox_prefix=`."""
    return f"_INBOX_{user}"


def _split(url: str) -> list[SplitResult]:
    parts = [urlsplit(part.strip()) for part in url.split(",") if part.strip()]
    if not parts:
        raise ValueError("empty NATS URL")
    return parts


def servers(url: str) -> list[str]:
    """The servers a NATS URL names: one, or several separated by commas (a cluster,
    nats://u:p@a:4222,nats://u:p@b:4222), each without its user info and query, which
    connect_options turns into options for all of them. The client then reconnects to any
    server of the list that is up, and to those the cluster announces (whose announced
    addresses carry no credentials: hence options, not URLs, carry them)."""
    return [f"{part.scheme}://{part.netloc.rpartition('@')[2]}" for part in _split(url)]


def _agreed(what: str, values: list[Any]) -> Any:
    """The one value the URLs of a list give (None when none does); two differing refused."""
    given = list(dict.fromkeys(v for v in values if v is not None))
    if len(given) > 1:
        raise ValueError(f"the NATS URLs of MOTCUA_NATS_URL give different {what}")
    return given[0] if given else None


def connect_options(url: str) -> dict[str, Any]:
    """nats.connect() options a URL implies, besides its servers (servers()).

    - With its user in it (nats://user:password@host): that user and password, and the user's
      own inbox prefix, which its permissions allow it alone to subscribe to.
    - tls://…?tls_ca=/path/ca.pem: the server's certificate verified against that CA (a
      private one, as deploy/README's TLS section makes); tls:// alone verifies against the
      system's CAs. Either way the host name must match the certificate.
    A list of URLs is one cluster with one identity: the user and the CA given on any of them
    apply to all, and URLs that give them differently are refused, as are mixed schemes."""
    parts = _split(url)
    if len({part.scheme for part in parts}) > 1:
        raise ValueError("the NATS URLs of MOTCUA_NATS_URL mix schemes (nats://, tls://)")
    user = _agreed("users", [p.username for p in parts])
    password = _agreed("passwords", [p.password for p in parts])
    ca = _agreed("tls_ca", [parse_qs(p.query).get("tls_ca", [None])[0] for p in parts])
    options: dict[str, Any] = {}
    if user is not None:
        options["inbox_prefix"] = inbox_prefix(unquote(user))
        if password is None:  # nats://token@host, as nats-py reads a URL
            options["token"] = unquote(user)
        else:
            options["user"], options["password"] = unquote(user), unquote(password)
    if ca:
        if parts[0].scheme != "tls":
            raise ValueError(f"tls_ca= needs a tls:// NATS URL, not {parts[0].scheme}://")
        options["tls"] = ssl.create_default_context(cafile=ca)
    return options


# user → subjects it may publish to (it may subscribe to its own inbox only); None: everything.
SERVICE_PERMISSIONS: dict[str, tuple[str, ...] | None] = {
    # ensure_streams and the reference seed (`motcua migrate` in compose).
    "admin": None,
    # Its pull consumers on the two streams it reads (the durable ones and the restreams'
    # temporary ones: create, look up, pull), acks, dead letters (a JetStream publish). Nothing
    # else of the JetStream API: no stream or consumer deletion, purge or update (issue 14).
    "ingest": (
        "$JS.API.INFO",
        "$JS.API.STREAM.NAMES",
        *(f"$JS.API.STREAM.INFO.{s}" for s in (EVENTS_STREAM, REFERENCE_STREAM, DLQ_STREAM)),
        *(
            f"$JS.API.CONSUMER.{action}.{s}{tail}"
            for s in (EVENTS_STREAM, REFERENCE_STREAM)
            for action, tail in (
                ("CREATE", ""),
                ("CREATE", ".>"),
                ("DURABLE.CREATE", ".>"),
                ("INFO", ".>"),
                ("MSG.NEXT", ".>"),
            )
        ),
        f"$JS.ACK.{EVENTS_STREAM}.>",
        f"$JS.ACK.{REFERENCE_STREAM}.>",
        f"{DLQ_PREFIX}.>",
    ),
    # Plan alerts (a JetStream publish).
    "metrics": (ALERTS_SUBJECTS, "$JS.API.INFO", "$JS.API.STREAM.INFO.>"),
    # JetStream account, stream and consumer info only.
    "api": ("$JS.API.INFO", "$JS.API.STREAM.INFO.>", "$JS.API.CONSUMER.INFO.>"),
    # `motcua up --simulate`: every integrator at once.
    "simulator": (EVENTS_SUBJECTS,),
}
EXAMPLE_INTEGRATOR = ("integrator_stnmt", ("STNMT",))  # as in deploy/nats/nats.conf
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
AGENCY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a subject token, as schemas/v1/events.py Code


def integrator_subjects(agencies: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{EVENTS_PREFIX}.{code}.>" for code in agencies)


@dataclass(frozen=True)
class Integrator:
    name: str
    agencies: tuple[str, ...]
    password_hash: str
    created_at: str


@dataclass(frozen=True)
class NewIntegrator:
    """An integrator just created, with the password that is shown this once."""

    integrator: Integrator
    password: str


def new_password() -> str:
    # 32 URL-safe characters: usable in nats://user:password@host URLs without escaping.
    return secrets.token_urlsafe(24)


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()


def load_integrators(nats_dir: Path) -> list[Integrator]:
    path = nats_dir / INTEGRATORS_FILE
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        Integrator(i["name"], tuple(i["agencies"]), i["password_hash"], i["created_at"])
        for i in data["integrators"]
    ]


def save_integrators(nats_dir: Path, integrators: list[Integrator]) -> None:
    data = {
        "integrators": [
            {
                "name": i.name,
                "agencies": list(i.agencies),
                "password_hash": i.password_hash,
                "created_at": i.created_at,
            }
            for i in sorted(integrators, key=lambda i: i.name)
        ]
    }
    write_private(nats_dir / INTEGRATORS_FILE, json.dumps(data, indent=2) + "\n")


def check_integrator(name: str, agencies: tuple[str, ...], existing: list[Integrator]) -> None:
    """Refuse a name or agency code the server config or the subjects could not carry."""
    if not NAME.fullmatch(name):
        raise ValueError(f"name {name!r}: lower-case letters, digits, '_' and '-' only")
    if name in SERVICE_PERMISSIONS or any(i.name == name for i in existing):
        raise ValueError(f"user {name!r} exists already")
    if not agencies:
        raise ValueError("give at least one --agency")
    for code in agencies:
        if not AGENCY.fullmatch(code):
            raise ValueError(f"agency code {code!r}: letters, digits, '_' and '-' only")


def create_integrator(nats_dir: Path, name: str, agencies: tuple[str, ...]) -> NewIntegrator:
    existing = load_integrators(nats_dir)
    agencies = tuple(dict.fromkeys(agencies))
    check_integrator(name, agencies, existing)
    password = new_password()
    created = Integrator(
        name, agencies, hash_password(password), datetime.now(UTC).isoformat(timespec="seconds")
    )
    save_integrators(nats_dir, [*existing, created])
    return NewIntegrator(created, password)


def rotate_integrator(nats_dir: Path, name: str) -> NewIntegrator:
    """A new password for an integrator, same user and agencies; the old one stops working when
    the server reloads (a leaked password, a staff change at the integrator)."""
    existing = load_integrators(nats_dir)
    old = next((i for i in existing if i.name == name), None)
    if old is None:
        raise ValueError(f"no integrator {name!r}")
    password = new_password()
    rotated = dataclasses.replace(old, password_hash=hash_password(password))
    save_integrators(nats_dir, [rotated if i.name == name else i for i in existing])
    return NewIntegrator(rotated, password)


def revoke_integrator(nats_dir: Path, name: str) -> None:
    existing = load_integrators(nats_dir)
    if not any(i.name == name for i in existing):
        raise ValueError(f"no integrator {name!r}")
    save_integrators(nats_dir, [i for i in existing if i.name != name])


def _user(name: str, password_hash: str, publish: tuple[str, ...] | None) -> str:
    # JSON strings: a quoted value is never read as a $variable, and a bcrypt hash starts with $.
    line = f"    {{ user: {json.dumps(name)}, password: {json.dumps(password_hash)}"
    if publish is None:
        return line + " }"
    return (
        f"{line}, permissions: {{ publish: {json.dumps(list(publish))}, "
        f"subscribe: {json.dumps([f'{inbox_prefix(name)}.>'])} }} }}"
    )


def render_config(service_hashes: dict[str, str], integrators: list[Integrator]) -> str:
    """The nats-server config: the server's name and its users. Listen address, port, JetStream
    and its store are on the command line (core/messaging/nats_server.py)."""
    users = [_user(name, service_hashes[name], p) for name, p in SERVICE_PERMISSIONS.items()]
    users += [_user(i.name, i.password_hash, integrator_subjects(i.agencies)) for i in integrators]
    return (
        "# Generated by motcua (core/messaging/nats_auth.py) at every start and by\n"
        "# `motcua integrators add|revoke`: edits here are overwritten. Same users and\n"
        "# permissions as deploy/nats/nats.conf, in the global account, bcrypt hashes only.\n"
        + server_config("authorization {\n  users: [\n" + "\n".join(users) + "\n  ]\n}\n")
    )


@dataclass(frozen=True)
class RoleUrls:
    """The URL each part of the system connects with."""

    admin: str
    ingest: str
    metrics: str
    api: str
    simulator: str

    @classmethod
    def same(cls, url: str) -> RoleUrls:
        """One URL for all (MOTCUA_NATS_URL): that server's own configuration decides."""
        return cls(url, url, url, url, url)


def user_url(server_url: str, user: str, password: str) -> str:
    """The URL (or comma-separated URLs, `motcua up --nats-cluster`) as this user."""
    urls = []
    for url in server_url.split(","):
        scheme, _, hostport = url.partition("://")
        urls.append(f"{scheme}://{user}:{password}@{hostport}")
    return ",".join(urls)


@dataclass(frozen=True)
class EmbeddedAuth:
    config_file: Path
    passwords: dict[str, str]  # service user → password
    is_first_start: bool  # print the notice
    first_start: NewIntegrator | None  # the example integrator, created on the first start only

    def urls(self, server_url: str) -> RoleUrls:
        return RoleUrls(**{u: user_url(server_url, u, self.passwords[u]) for u in _ROLES})

    def notice(self, server_url: str) -> str | None:
        """What the first start prints, once; None on every later start."""
        if not self.is_first_start:
            return None
        lines = [
            "NATS yêu cầu xác thực. Thông tin đăng nhập dưới đây chỉ in MỘT LẦN, hãy lưu lại:",
        ]
        if self.first_start:
            lines += integrator_lines(self.first_start, server_url)
        lines += [
            f"  Tài khoản của các dịch vụ (admin, ingest, metrics, api, simulator): "
            f"{self.config_file.parent / CREDENTIALS_FILE} (mode 0600)",
            "  Thêm integrator: motcua integrators add NAME --agency CODE [--agency CODE …]",
        ]
        return "\n".join(lines)


_ROLES = ("admin", "ingest", "metrics", "api", "simulator")


def _servers_arg(server_url: str) -> str:
    """nats.connect()'s first argument as an integrator writes it: a URL, or a cluster's list."""
    urls = server_url.split(",")
    return repr(urls[0] if len(urls) == 1 else urls)


def integrator_lines(new: NewIntegrator, server_url: str) -> list[str]:
    i = new.integrator
    return [
        f"  integrator {i.name}: publish {', '.join(integrator_subjects(i.agencies))}",
        f"    user {i.name}  password {new.password}",
        f"    nats-py: nats.connect({_servers_arg(server_url)}, user={i.name!r}, password='…', "
        f"inbox_prefix={inbox_prefix(i.name)!r})",
        f"    URL:     {user_url(server_url, i.name, new.password)}",
    ]


def _load_credentials(nats_dir: Path) -> dict[str, Any]:
    path = nats_dir / CREDENTIALS_FILE
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["users"]
    return loaded


def write_config(nats_dir: Path) -> Path | None:
    """Re-render the server config from the stored users; None before the first start."""
    users = _load_credentials(nats_dir)
    if not users:
        return None
    hashes = {name: u["password_hash"] for name, u in users.items()}
    path = nats_dir / CONFIG_FILE
    write_private(path, render_config(hashes, load_integrators(nats_dir)))
    return path


def prepare(nats_dir: Path) -> EmbeddedAuth:
    """Load (or, on the first start, generate) the users and write the server config."""
    users = _load_credentials(nats_dir)
    first = not users
    example: NewIntegrator | None = None
    if first and not (nats_dir / INTEGRATORS_FILE).exists():
        # A fresh system can take events at once, as compose's example integrator does.
        example = create_integrator(nats_dir, EXAMPLE_INTEGRATOR[0], EXAMPLE_INTEGRATOR[1])
    missing = [u for u in SERVICE_PERMISSIONS if u not in users]  # also a user added by an upgrade
    for name in missing:
        password = new_password()
        users[name] = {"password": password, "password_hash": hash_password(password)}
    if missing:
        # Written last: its existence is what marks the first start as done.
        text = json.dumps({"users": users}, indent=2) + "\n"
        write_private(nats_dir / CREDENTIALS_FILE, text)
    config = write_config(nats_dir)
    assert config is not None
    return EmbeddedAuth(
        config_file=config,
        passwords={name: u["password"] for name, u in users.items()},
        is_first_start=first,
        first_start=example,
    )


def admin_url(nats_dir: Path, server_url: str) -> str:
    """The admin user's URL for a CLI command reaching the local `motcua up`; the plain URL when
    that server has never started with authentication."""
    users = _load_credentials(nats_dir)
    if "admin" not in users:
        return server_url
    return user_url(server_url, "admin", users["admin"]["password"])


def running_server(nats_dir: Path) -> int | None:
    """The pid of the embedded nats-server running with this data dir's config, if any."""
    try:
        pid = int((nats_dir / PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    config = str((nats_dir / CONFIG_FILE).resolve()).encode()
    return pid if b"nats-server" in cmdline and config in cmdline else None


def reload_running_server(nats_dir: Path) -> bool:
    """Ask the embedded nats-server running on this data dir, if any, to re-read its config."""
    pid = running_server(nats_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGHUP)
    return True


async def start_embedded(nats_dir: Path, port: int) -> tuple[EmbeddedNats, RoleUrls, str | None]:
    """Start the embedded server with authentication: the server, each part's URL, and the
    first start's notice (None on every later start)."""
    auth = await asyncio.to_thread(prepare, nats_dir)
    server = EmbeddedNats(nats_dir, port=port, config_file=auth.config_file)
    await server.start()
    return server, auth.urls(server.url), auth.notice(server.url)


def redacted(url: str) -> str:
    """A URL (or a comma-separated list) fit for a message or a log: passwords replaced."""
    if "," in url:
        return ",".join(redacted(part) for part in url.split(","))
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostport = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hostport}"
