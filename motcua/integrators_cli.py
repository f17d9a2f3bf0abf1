"""`motcua integrators add|list|rotate|revoke`: the embedded nats-server's integrators.

A change is written to <data dir>/nats/ and reaches a running `motcua up` at once (its server
re-reads its config on SIGHUP), or the next one at its start. Compose's NATS users are static, in
deploy/nats/nats.conf.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Imported by the commands, not here: `motcua --help` builds this parser (pydantic-settings,
# bcrypt and the subjects cost more than the rest of the parser).
if TYPE_CHECKING:
    from core.settings import CommonSettings

SEED_NOTE = "the packaged sample core/reference/data/khanhhoa.json"


def _settings() -> Any:
    """CommonSettings and the embedded server's port, which `motcua up` reads as well."""
    from core.settings import CommonSettings

    class _Settings(CommonSettings):
        nats_port: int = 4222

    return _Settings()


def known_agencies(settings: CommonSettings) -> tuple[set[str], str]:
    """The agency codes of the reference data, and where they come from: the store when it can
    be opened (a chDB store is locked while `motcua up` runs), else the packaged sample."""
    from core.messaging import nats_auth

    url = settings.resolved_clickhouse_url()
    if url.startswith("chdb://"):
        usable = (settings.data_dir / "clickhouse").exists() and (
            nats_auth.running_server(settings.data_dir / "nats") is None
        )
    else:
        usable = True
    if usable:
        try:
            from core.storage.clickhouse import connect

            rows = connect(url).query("SELECT DISTINCT agency_code FROM agencies").result_rows
            if rows:
                return {str(r[0]) for r in rows}, "the store's reference data"
        except Exception:  # locked, unreachable or not migrated: fall back to the sample
            pass
    from core.ingestion.reference_loader import read_catalog_file
    from core.reference.seed import SEED_FILE
    from schemas.v1.reference import AgencyReference

    events = read_catalog_file(SEED_FILE)
    return {e.agency_code for e in events if isinstance(e, AgencyReference)}, SEED_NOTE


def _apply(nats_dir: Path) -> str:
    """Re-render the server config; say when the change takes effect."""
    from core.messaging import nats_auth

    if nats_auth.write_config(nats_dir) is None:
        return "takes effect when `motcua up` first starts"
    if nats_auth.reload_running_server(nats_dir):
        return "the running nats-server reloaded its users"
    return "takes effect at the next `motcua up`"


def _add(args: argparse.Namespace) -> None:
    from core.messaging import nats_users

    settings = _settings()
    agencies = tuple(args.agency)
    if not args.skip_agency_check:
        known, source = known_agencies(settings)
        unknown = [code for code in agencies if code not in known]
        if unknown:
            raise SystemExit(
                f"unknown agency code(s) {', '.join(unknown)} in {source}; load them first "
                "(`motcua catalog load`) or pass --skip-agency-check"
            )
    nats_dir = settings.data_dir / "nats"
    try:
        new = nats_users.create_integrator(nats_dir, args.name, agencies)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    when = _apply(nats_dir)
    server_url = f"nats://127.0.0.1:{settings.nats_port}"
    print("Mật khẩu chỉ in MỘT LẦN, hãy gửi cho integrator qua kênh an toàn:")
    print("\n".join(nats_users.integrator_lines(new, server_url)))
    print(when)


def _list(_: argparse.Namespace) -> None:
    from core.messaging import nats_users

    integrators = nats_users.load_integrators(_settings().data_dir / "nats")
    for i in integrators:
        print(f"{i.name}\t{','.join(i.agencies)}\t{i.created_at}")
    if not integrators:
        print("no integrator")


def _rotate(args: argparse.Namespace) -> None:
    from core.messaging import nats_users

    settings = _settings()
    nats_dir = settings.data_dir / "nats"
    try:
        new = nats_users.rotate_integrator(nats_dir, args.name)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    when = _apply(nats_dir)
    print("Mật khẩu mới chỉ in MỘT LẦN, hãy gửi cho integrator qua kênh an toàn:")
    print("\n".join(nats_users.integrator_lines(new, f"nats://127.0.0.1:{settings.nats_port}")))
    print(f"the old password no longer works: {when}")


def _revoke(args: argparse.Namespace) -> None:
    from core.messaging import nats_users

    nats_dir = _settings().data_dir / "nats"
    try:
        nats_users.revoke_integrator(nats_dir, args.name)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    print(f"revoked {args.name}: {_apply(nats_dir)}")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("integrators", help="who may publish events to `motcua up`'s NATS")
    commands = parser.add_subparsers(dest="integrators_command", required=True)
    add = commands.add_parser(
        "add", help="create an integrator allowed motcua.events.<agency>.> (password shown once)"
    )
    add.add_argument("name", help="its NATS user name, e.g. integrator_skhdt")
    add.add_argument(
        "--agency", action="append", required=True, help="an agency code it publishes for"
    )
    add.add_argument(
        "--skip-agency-check",
        action="store_true",
        help="accept codes not (yet) in the reference data",
    )
    add.set_defaults(func=_add)
    commands.add_parser("list", help="names, agencies, creation times").set_defaults(func=_list)
    rotate = commands.add_parser(
        "rotate", help="a new password (shown once); the old one stops working"
    )
    rotate.add_argument("name")
    rotate.set_defaults(func=_rotate)
    revoke = commands.add_parser("revoke", help="remove an integrator; its connections close")
    revoke.add_argument("name")
    revoke.set_defaults(func=_revoke)
