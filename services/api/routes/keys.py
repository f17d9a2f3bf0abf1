"""Key management over HTTP (admin): for `motcua up`, whose chDB store no other process can open,
so `motcua keys` cannot reach it while it runs. An API reading through a read-only ClickHouse
user (compose) answers 501 to the writes: there, keys are managed with `motcua keys`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from services.api.deps import Context
from services.api.keys import ApiKey, KeyStoreReadOnly, Role

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class NewKey(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200, description="Who holds the key")]
    role: Annotated[str, Field(pattern="^(viewer|auditor|admin)$")]


class CreatedKey(KeyOut):
    key: str = Field(description="The key itself: shown in this answer only, never again")


def _out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.key_id,
        name=key.name,
        role=key.role.name,
        created_at=key.created_at,
        created_by=key.created_by,
        revoked_at=key.revoked_at,
    )


def _actor(request: Request) -> str:
    return f"api:{request.state.api_key.key_id}"


@router.get("", summary="Every API key (never the key itself)", response_model=list[KeyOut])
async def list_keys(ctx: Context) -> list[KeyOut]:
    return [_out(k) for k in await asyncio.to_thread(ctx.keys.all)]


@router.post("", summary="Create a key; the answer shows it once", status_code=201)
async def create_key(ctx: Context, body: NewKey, request: Request) -> CreatedKey:
    try:
        key, token = await asyncio.to_thread(
            ctx.keys.create, body.name, Role[body.role], _actor(request)
        )
    except KeyStoreReadOnly as exc:
        raise HTTPException(501, str(exc)) from exc
    return CreatedKey(**_out(key).model_dump(), key=token)


@router.post("/{key_id}:revoke", summary="Revoke a key, effective at once", response_model=KeyOut)
async def revoke_key(ctx: Context, key_id: str, request: Request) -> KeyOut:
    try:
        key = await asyncio.to_thread(ctx.keys.revoke, key_id, _actor(request))
    except KeyStoreReadOnly as exc:
        raise HTTPException(501, str(exc)) from exc
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    return _out(key)
