"""A NATS URL and what a client connects with: its servers, its user's options (credentials,
the user's own inbox, the CA), the URL each part of the system uses, and a URL fit for a log.

The client side only: who may connect to the embedded server is core/messaging/nats_users.py
and core/messaging/nats_auth.py."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit


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


def redacted(url: str) -> str:
    """A URL (or a comma-separated list) fit for a message or a log: passwords replaced."""
    if "," in url:
        return ",".join(redacted(part) for part in url.split(","))
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostport = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hostport}"
