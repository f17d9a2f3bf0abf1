"""Liveness and readiness, open to everyone (load balancers, compose healthchecks)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from core.storage.clickhouse import ping
from services.api.deps import Context

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="ClickHouse and NATS are reachable")
async def readyz(ctx: Context) -> JSONResponse:
    checks = {
        "clickhouse": await asyncio.to_thread(ping, ctx.clickhouse),
        "nats": await ctx.nats_ready(),
    }
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
