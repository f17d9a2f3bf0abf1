"""The FastAPI application: the read API for auditors, integrators and the public page."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from core.storage.pool import Abandoned
from services.api.admission import Admitted
from services.api.auth import authorize, secured_openapi
from services.api.deps import ApiContext
from services.api.docs import install_docs
from services.api.head import HeadAsGet
from services.api.page import open_data
from services.api.page import routes as page
from services.api.routes import (
    health,
    index766,
    keys,
    metrics,
    pipeline,
    plans,
    reconciliation,
    replay,
    reports,
    targets,
    trails,
)


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="motcua-monitor",
        summary="Giám sát Một cửa điện tử tỉnh Khánh Hòa: chỉ tiêu, tiến độ so với kế hoạch",
        version="0.1.0",
        # /docs from the packaged Swagger UI instead of a CDN (services/api/docs.py)
        docs_url=None,
        redoc_url=None,
        # Every route is checked against the role table in services/api/auth.py.
        dependencies=[Depends(authorize)],
    )
    app.openapi = secured_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(HeadAsGet)
    # outermost: a refused request costs no other middleware's work
    app.add_middleware(Admitted, admission=context.admission)
    app.state.context = context
    install_docs(app)

    @app.exception_handler(Abandoned)
    async def _gone(request: Request, exc: Abandoned) -> Response:
        # the client disconnected before the answer (nginx's 499): nobody reads this
        return Response(status_code=499)

    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(metrics.rule_sets_router)
    app.include_router(pipeline.router)
    app.include_router(replay.router)
    app.include_router(trails.router)
    app.include_router(reports.router)
    app.include_router(reconciliation.router)
    app.include_router(index766.router)
    app.include_router(targets.router)
    app.include_router(plans.router)
    app.include_router(keys.router)

    # The public scorecard at / and /co-quan/{agency_code}: what a citizen, and a newcomer after
    # `motcua up --simulate`, sees first.
    app.include_router(page.router)
    # The page's figures as open data (JSON, CSV), no key: /v1/open/…
    app.include_router(open_data.router)

    @app.get("/asyncapi.json", tags=["contract"], summary="The event contract as AsyncAPI 3.0")
    def asyncapi() -> JSONResponse:
        from schemas.asyncapi import asyncapi_document

        return JSONResponse(asyncapi_document())

    return app
