"""POST /v1/plans:check (admin): a new plan file checked against the plans this process runs.

Plans are files read at start (core/plans/); a new one ships by putting it in
$MOTCUA_PLANS_DIR and restarting. This route lets whoever writes one see, before that, whether
it is valid (the same checks and the same file:line messages as at start) and how its targets
read, without shell access to the server.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from core.plans import PlanError, check_new_plan
from core.plans.loader import MAX_PLAN_BYTES
from services.api.deps import Context
from services.api.routes.targets import plan_out, target_out

router = APIRouter(prefix="/v1", tags=["targets"])


@router.post(
    "/plans:check",
    summary="Validate a plan file (YAML) as `motcua up` will load it; nothing is stored",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": {"schema": {"type": "string"}}},
        }
    },
)
async def check_plan(ctx: Context, request: Request) -> dict[str, Any]:
    # read no more than a plan can be: a bigger body is refused before it is held whole
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PLAN_BYTES:
            raise HTTPException(413, f"a plan file is at most {MAX_PLAN_BYTES:,} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, f"plan.yaml: the file is not UTF-8 ({exc.reason})") from None
    try:
        plan = check_new_plan(text, "plan.yaml", ctx.get_plans())
    except PlanError as exc:
        raise HTTPException(422, str(exc)) from None
    return {
        "valid": True,
        "plan": plan_out(plan),
        "targets": [target_out(plan, t) for t in plan.targets],
        "next_step": "Đặt tệp vào MOTCUA_PLANS_DIR và khởi động lại để áp dụng. "
        "Put the file in MOTCUA_PLANS_DIR and restart to apply it.",
    }
