"""`motcua grafana export|sync`: the argparse wiring, kept out of motcua/cli.py."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path("deploy/grafana")


def _export(args: argparse.Namespace) -> None:
    from tools.grafana import export

    if args.check:
        stale = export.stale(args.dir)
        for path in stale:
            print(f"out of date: {args.dir / path}")
        if stale:
            raise SystemExit("run `motcua grafana export` and commit the result")
        print("Grafana files are up to date")
        return
    touched = export.write(args.dir)
    for path in touched:
        print(f"{'wrote' if (args.dir / path).exists() else 'removed'} {args.dir / path}")
    print(f"{len(touched)} file(s) changed")


def _sync(args: argparse.Namespace) -> None:
    from tools.grafana.sync import sync

    token = args.token or os.environ.get("GRAFANA_TOKEN")
    if not token:
        raise SystemExit("give --token or set GRAFANA_TOKEN (a service-account token)")
    password = args.clickhouse_password or os.environ.get("CH_GRAFANA_PASSWORD") or None
    api_key = args.api_key or os.environ.get("MOTCUA_GRAFANA_API_KEY") or None
    changes = sync(
        args.url,
        token,
        args.dir,
        clickhouse_password=password,
        clickhouse_host=args.clickhouse_host,
        api_key=api_key,
        force=args.force,
    )
    for c in changes:
        print(f"{c.action:9} {c.kind} {c.uid}")
    counts = Counter(c.action for c in changes)
    summary = ", ".join(f"{counts[a]} {a}" for a in ("created", "updated", "unchanged"))
    print(summary, file=sys.stderr)


def add_parser(sub: Any) -> None:
    grafana = sub.add_parser("grafana", help="dashboards, alert rules and datasource as code")
    commands = grafana.add_subparsers(dest="grafana_command", required=True)
    export = commands.add_parser("export", help="write the generated files under deploy/grafana")
    export.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="default deploy/grafana")
    export.add_argument("--check", action="store_true", help="fail if the files are out of date")
    export.set_defaults(func=_export)
    push = commands.add_parser("sync", help="push folder, datasource, dashboards, alert rules")
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. http://host:3000")
    push.add_argument("--token", help="service-account token (default: $GRAFANA_TOKEN)")
    push.add_argument(
        "--clickhouse-password",
        help="grafana_ro's password for the datasource (default: $CH_GRAFANA_PASSWORD)",
    )
    push.add_argument(
        "--clickhouse-host", help="override the datasource host (default: clickhouse)"
    )
    push.add_argument(
        "--api-key",
        help="a viewer API key the boards read figures with (default: $MOTCUA_GRAFANA_API_KEY); "
        "the API's address is $MOTCUA_GRAFANA_API_URL (default http://api:8000)",
    )
    push.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="default deploy/grafana")
    push.add_argument("--force", action="store_true", help="write everything, even if unchanged")
    push.set_defaults(func=_sync)
