"""`motcua plans list|check`: the plans in force, and a new plan file checked before it ships.

`check` validates each file exactly as `motcua up` will at its start (the metric, scope, agencies,
overlaps, with the file and line of the first error) and refuses an id@version already defined
by the packaged plans or $MOTCUA_PLANS_DIR: a changed plan gets a new version.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The loader validates against every metric and 766 indicator, which brings the store's client:
# imported by the commands that run, so `motcua plans --help` answers at once.
if TYPE_CHECKING:
    from core.plans.model import Plan


def _line(plan: Plan) -> str:
    kind = "minh họa" if plan.illustrative else "ban hành"
    return (
        f"{plan.key}  {plan.valid.start}…{plan.valid.end}  {len(plan.targets)} chỉ tiêu đo được, "
        f"{len(plan.unmeasurable)} không đo được ({kind})  {plan.title}"
    )


def _list(args: argparse.Namespace) -> None:
    from core.plans.loader import load_plans

    for plan in load_plans().values():
        print(_line(plan))


def _check(args: argparse.Namespace) -> None:
    from core.plans.loader import PlanError, check_new_plan, load_plans

    loaded = dict(load_plans())
    failed = False
    for path in args.files:
        try:
            plan = check_new_plan(path.read_text(encoding="utf-8"), str(path), loaded)
        except (PlanError, OSError) as exc:
            print(f"LỖI {exc}")
            failed = True
            continue
        loaded[plan.key] = plan  # two new files with the same id@version clash too
        print(f"OK  {_line(plan)}")
    if failed:
        raise SystemExit(1)


def add_parser(sub: Any) -> None:
    plans = sub.add_parser("plans", help="the plans in force; check a new plan file")
    plans_sub = plans.add_subparsers(dest="plans_command", required=True)
    plans_sub.add_parser(
        "list", help="every plan loaded at start: packaged and $MOTCUA_PLANS_DIR"
    ).set_defaults(func=_list)
    check = plans_sub.add_parser(
        "check", help="validate plan files as `motcua up` will; exit 1 naming file and line"
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.set_defaults(func=_check)
