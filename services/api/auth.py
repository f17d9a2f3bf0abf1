"""Who may call what: the role each route needs, checked on every request from its API key.

The table below is the only place a route's role is decided (README has the same table for
people). A route missing from it needs `admin`: a new route is closed until someone decides, and
tests/test_api_keys.py fails until it is listed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.utils import get_openapi

from services.api.keys import ApiKey, Role

# (method, path template) → the least role allowed; None: open to everyone. The public page,
# health, and the event contract are open; /docs and /openapi.json are open too (FastAPI serves
# them outside the routes below): the API's shape is no secret, the data behind it is, and the
# docs page needs the schema to offer its Authorize button.
ROUTE_ROLES: dict[tuple[str, str], Role | None] = {
    ("GET", "/"): None,
    ("GET", "/co-quan/{agency_code}"): None,
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/asyncapi.json"): None,
    # The page's figures as open data (services/api/page/open_data.py): bounded per address.
    ("GET", "/v1/open"): None,
    ("GET", "/v1/open/figures"): None,
    ("GET", "/v1/open/monthly"): None,
    ("GET", "/v1/open/index766"): None,
    ("GET", "/v1/open/targets"): None,
    # Figures and where they stand: what a dashboard or a newsroom needs.
    ("GET", "/v1/metrics"): Role.viewer,
    ("GET", "/v1/metrics/{metric}"): Role.viewer,
    ("GET", "/v1/rule-sets"): Role.viewer,
    ("GET", "/v1/index766"): Role.viewer,
    ("GET", "/v1/targets"): Role.viewer,
    ("GET", "/v1/targets/{target_id}"): Role.viewer,
    ("GET", "/v1/alerts"): Role.viewer,
    ("GET", "/v1/pipeline"): Role.viewer,
    # Single dossiers and feedback, raw refused messages, exports: what an audit needs.
    ("GET", "/v1/metrics/{metric}/items"): Role.auditor,
    ("GET", "/v1/reports/ii06a"): Role.auditor,
    # The source systems' manifests against what motcua stored (issue 18).
    ("GET", "/v1/reconciliation"): Role.auditor,
    ("GET", "/v1/reconciliation/{agency}/{day}/ids"): Role.auditor,
    ("GET", "/v1/dossiers/{dossier_id}/events"): Role.auditor,
    ("GET", "/v1/feedback/{feedback_id}/events"): Role.auditor,
    ("GET", "/v1/dead-letters"): Role.auditor,
    ("GET", "/v1/dead-letters/summary"): Role.auditor,
    ("GET", "/v1/dead-letters/{stream_seq}/raw"): Role.auditor,
    # Operations that change what the system does or who may use it.
    ("POST", "/v1/metrics:refresh"): Role.admin,
    ("POST", "/v1/dead-letters:replay"): Role.admin,
    ("POST", "/v1/plans:check"): Role.admin,
    ("GET", "/v1/keys"): Role.admin,
    ("POST", "/v1/keys"): Role.admin,
    ("POST", "/v1/keys/{key_id}:revoke"): Role.admin,
}

UNAUTHORIZED = (
    "Thiếu khóa API, khóa không đúng hoặc đã bị thu hồi. "
    "Missing, unknown or revoked API key: send `Authorization: Bearer <key>` or `X-API-Key`."
)


def required_role(method: str, path: str | None) -> Role | None:
    if path is None:  # no route matched: let the router answer 404/405
        return None
    return ROUTE_ROLES.get((method, path), Role.admin)


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


async def authorize(request: Request) -> None:
    """App-wide dependency: 401 without an active key, 403 when its role is too low.

    Async, so an open route (health, readiness, the page's fast refusals) needs no worker
    thread: as a plain function it waited for one of the pool's threads, all of which a burst of
    page builds could hold (/healthz answered again 138 s after such a burst: issue 14)."""
    role = required_role(request.method, getattr(request.scope.get("route"), "path", None))
    if role is None:
        return
    token = presented_key(request)
    key: ApiKey | None = None
    if token is not None:
        # the key snapshot may be reloaded from the store: off the event loop
        keys = request.app.state.context.keys
        key = await asyncio.to_thread(keys.authenticate, token)
    if key is None:
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    if key.role < role:
        raise HTTPException(
            403,
            f"Khóa API “{key.key_id}” (vai trò {key.role.name}) không đủ quyền: cần {role.name}. "
            f"This key's role ({key.role.name}) cannot use this route: it needs {role.name}.",
        )
    request.state.api_key = key


_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer mk_…"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def secured_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document with the key schemes (the Authorize button in /docs) and, on every
    protected operation, its security requirement and the role it needs."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {})
        components["securitySchemes"] = _SCHEMES
        _document_errors(components.setdefault("schemas", {}))
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                role = required_role(method.upper(), path)
                if role is None:
                    continue
                operation["security"] = [{"bearer": []}, {"apiKeyHeader": []}]
                operation.setdefault("responses", {}).update(_AUTH_RESPONSES)
                note = f"Vai trò tối thiểu / role needed: **{role.name}**."
                operation["description"] = f"{note}\n\n{operation.get('description', '')}".strip()
        app.openapi_schema = schema
        return schema

    return openapi


_ERROR_REF = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_AUTH_RESPONSES = {
    "401": {"description": "Thiếu hoặc sai khóa API / missing or unknown API key", **_ERROR_REF},
    "403": {"description": "Khóa không đủ quyền / the key's role is too low", **_ERROR_REF},
    "429": {
        "description": "Khóa có quá nhiều yêu cầu cùng lúc / too many requests in flight for "
        "this key: retry after `Retry-After` seconds (services/api/admission.py)",
        **_ERROR_REF,
    },
    "503": {
        "description": "Hệ thống đang bận / the API is busy: retry after `Retry-After` seconds",
        **_ERROR_REF,
    },
}


def _document_errors(schemas: dict[str, Any]) -> None:
    """Describe the error bodies as they are. Every 4xx is {"detail": …}: FastAPI's own request
    checks give a list of field errors, the routes' checks (an unknown metric, a period out of
    range, an agency and an integrator that disagree) one sentence. FastAPI documents only the
    list, so a client generated from the document would fail to parse the sentence."""
    detail = {
        "title": "Detail",
        "anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
        ],
    }
    schemas["Error"] = {
        "title": "Error",
        "type": "object",
        "properties": {"detail": detail},
        "required": ["detail"],
    }
    if "HTTPValidationError" in schemas:
        schemas["HTTPValidationError"]["properties"]["detail"] = detail
