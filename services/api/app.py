"""The FastAPI application: the read API for auditors, integrators and the public page."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from services.api.deps import ApiContext
from services.api.routes import health, index766, metrics, pipeline, reports, trails

_LANDING = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Giám sát Một cửa điện tử tỉnh Khánh Hòa</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
 padding: 0 1rem">
<h1>Giám sát Một cửa điện tử tỉnh Khánh Hòa</h1>
<p>Theo dõi liên tục tình hình tiếp nhận, giải quyết hồ sơ thủ tục hành chính và phản ánh, kiến nghị
theo Kế hoạch 7860/KH-UBND.</p>
<ul>
<li><a href="/docs">Tài liệu API (OpenAPI)</a></li>
<li><a href="/v1/metrics">Danh mục chỉ tiêu</a></li>
<li><a href="/v1/metrics/on_time_rate?group_by=agency">Tỷ lệ hồ sơ đúng hạn theo cơ quan</a></li>
<li><a href="/v1/metrics/online_share?group_by=agency">Tỷ lệ hồ sơ trực tuyến theo cơ quan</a></li>
<li><a href="/v1/pipeline">Tình trạng hệ thống</a></li>
<li><a href="/asyncapi.json">Đặc tả sự kiện (AsyncAPI)</a></li>
</ul></body></html>"""


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="motcua-monitor",
        summary="Giám sát Một cửa điện tử tỉnh Khánh Hòa: chỉ tiêu, tiến độ so với kế hoạch",
        version="0.1.0",
    )
    app.state.context = context
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(metrics.rule_sets_router)
    app.include_router(pipeline.router)
    app.include_router(trails.router)
    app.include_router(reports.router)
    app.include_router(index766.router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def landing() -> str:
        return _LANDING

    @app.get("/asyncapi.json", tags=["contract"], summary="The event contract as AsyncAPI 3.0")
    def asyncapi() -> JSONResponse:
        from schemas.asyncapi import asyncapi_document

        return JSONResponse(asyncapi_document())

    return app
