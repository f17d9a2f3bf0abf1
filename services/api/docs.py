"""/docs: Swagger UI served from the package, so the API's docs work on a closed network.

FastAPI's own /docs loads Swagger UI from a CDN: on a provincial government network without
internet the page stayed blank (issue 15). Here its script, style sheet and icon come from
services/api/swagger_ui/ (swagger-ui-dist, vendored: see the README there for why and how to
update), and the page says so in its Content-Security-Policy: the browser itself refuses any
other host, so a script or style sheet fetched from elsewhere fails here as it would offline.

The routes are added as plain Starlette routes, outside the role check (services/api/auth.py):
the API's shape is no secret, and the docs page needs the schema to offer its Authorize button.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

ASSETS_DIR = Path(__file__).resolve().parent / "swagger_ui"
SWAGGER_UI_VERSION = "5.36.0"  # services/api/swagger_ui/README.md
# The version in the path: a new one is a new URL, so a browser never mixes two versions' files.
ASSETS_PATH = f"/docs/assets/{SWAGGER_UI_VERSION}"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _csp(html: str) -> str:
    """Only this origin, and the page's own inline start-up script by its hash. Swagger UI sets
    style attributes as it renders, hence 'unsafe-inline' for styles (styles run no code)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        "default-src 'none'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "font-src 'self' data:; "
        "connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def docs_page(
    openapi_url: str, title: str, assets: str = ASSETS_PATH
) -> tuple[str, dict[str, str]]:
    """The page's HTML and its headers."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon-32x32.png",
        # Swagger UI would show a badge image from validator.swagger.io: no outside host.
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    return html, {
        "Content-Security-Policy": _csp(html),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def install_docs(app: FastAPI) -> None:
    """/docs from the packaged Swagger UI; /redoc (FastAPI's other page, from a CDN too) now
    leads there. The app must be created with docs_url=None and redoc_url=None."""
    if not (ASSETS_DIR / "swagger-ui-bundle.js").is_file():
        # an install that lost the package data: say so at start, not with a blank page
        raise RuntimeError(f"Swagger UI assets missing from {ASSETS_DIR}")
    openapi_url, title = app.openapi_url, f"{app.title} — Tài liệu API"
    assert openapi_url is not None

    async def docs(request: Request) -> HTMLResponse:
        # behind a proxy that serves the API under a prefix, as FastAPI's own /docs does
        root = request.scope.get("root_path", "").rstrip("/")
        html, headers = docs_page(root + openapi_url, title, root + ASSETS_PATH)
        return HTMLResponse(html, headers=headers)

    async def redoc(request: Request) -> RedirectResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{root}/docs", status_code=308)

    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
