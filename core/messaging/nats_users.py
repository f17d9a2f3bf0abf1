"""Who may use NATS and what each user may publish: the services' users (SERVICE_PERMISSIONS,
the same lists as deploy/nats/nats.conf, a test holds the two equal) and the integrators.

<data dir>/nats/integrators.json (mode 0600): each integrator's name, agency codes and bcrypt
hash. An integrator's password is printed once, when it is created, and stored nowhere. The
embedded server's config rendered from these users is core/messaging/nats_auth.py's.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import bcrypt

from core.messaging.urls import inbox_prefix, user_url
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

INTEGRATORS_FILE = "integrators.json"

# nats-server's own tool (`nats server passwd`) defaults to cost 11: ~0.1 s per connection.
BCRYPT_COST = 11


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
