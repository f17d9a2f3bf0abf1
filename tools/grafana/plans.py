"""What the boards need from the packaged plan files (core/plans/data), read at export time
so the generated JSON does not depend on $MOTCUA_PLANS_DIR."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from core.plans.loader import load_plan_file
from core.plans.model import Plan

LAND_DOMAIN = "dat_dai"


@cache
def packaged_plans() -> tuple[Plan, ...]:
    folder = resources.files("core.plans") / "data"
    files = sorted(e.name for e in folder.iterdir() if e.name.endswith((".yaml", ".yml")))
    return tuple(load_plan_file(Path(str(folder / name))) for name in files)


def land_late_targets() -> tuple[str, ...]:
    """Ids of the late-rate targets scoped to the land domain (KH 7860 A.IV.5 and the like)."""
    ids = {
        t.id
        for plan in packaged_plans()
        for t in plan.targets
        if t.metric == "late_rate" and LAND_DOMAIN in t.scope.domains
    }
    return tuple(sorted(ids))
