"""Plans (kế hoạch) as versioned data: each target of a plan with its metric, scope, threshold,
period and agency in charge, plus the targets events cannot measure, with why.

A plan is a YAML file in `services/plans/data/` (or in `MOTCUA_PLANS_DIR`); a new plan needs no
code change. `load_plans()` validates every file and names the file and line of any error.
"""

from services.plans.checks import Reference
from services.plans.loader import (
    PLANS_DIR_ENV,
    PlanError,
    check_new_plan,
    load_plan_file,
    load_plans,
    parse_plan,
)
from services.plans.model import Plan, Target, Unmeasurable

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
