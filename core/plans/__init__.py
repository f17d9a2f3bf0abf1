"""Plans (kế hoạch) as versioned data: each target of a plan with its metric, scope, threshold,
period and agency in charge, plus the targets events cannot measure, with why.

A plan is a YAML file in `core/plans/data/` (or in `MOTCUA_PLANS_DIR`); a new plan needs no
code change. `load_plans()` validates every file and names the file and line of any error.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.plans.checks import Reference
    from core.plans.loader import (
        PLANS_DIR_ENV,
        PlanError,
        check_new_plan,
        load_plan_file,
        load_plans,
        parse_plan,
    )
    from core.plans.model import Plan, Target, Unmeasurable

# Where each name lives. Loaded when first asked for (PEP 562): the checks import every metric
# and 766 indicator, and with them the store's client, which `motcua plans --help` or a module
# wanting only plans.forecast has no use for.
_HOMES = {
    "Reference": "core.plans.checks",
    **dict.fromkeys(
        (
            "PLANS_DIR_ENV",
            "PlanError",
            "check_new_plan",
            "load_plan_file",
            "load_plans",
            "parse_plan",
        ),
        "core.plans.loader",
    ),
    **dict.fromkeys(("Plan", "Target", "Unmeasurable"), "core.plans.model"),
}


def __getattr__(name: str) -> Any:
    import importlib

    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = [
    "PLANS_DIR_ENV",
    "Plan",
    "PlanError",
    "Reference",
    "Target",
    "Unmeasurable",
    "check_new_plan",
    "load_plan_file",
    "load_plans",
    "parse_plan",
]
