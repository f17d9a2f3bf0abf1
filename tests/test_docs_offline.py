"""/docs on a network without internet (issue 15): Swagger UI from the package, rendered by a real
headless chromium that can reach the API's host and no other."""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
from typing import Any

import httpx
import pytest

from tests.helpers import HEADLESS_CHROMIUM

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Every host name resolves to nothing, and every connection that is not to the loopback goes to
# a proxy that is not there (port 9, discard): an address literal fails as well as a name.
OFFLINE = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1",
)


def offline_dom(chromium: str, url: str) -> tuple[str, str]:
    """The DOM of `url` after its scripts ran, in a chromium cut off from every host but the
    loopback; and what the browser logged (its console, CSP refusals)."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium,
                *HEADLESS_CHROMIUM,
                f"--user-data-dir={profile}",
                *OFFLINE,
                "--enable-logging=stderr",
                "--v=0",
                # virtual time runs on while the page fetches /openapi.json and renders it
                "--virtual-time-budget=20000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return done.stdout, done.stderr


async def test_docs_render_without_internet(chromium: str, system: Any) -> None:
    # `chromium` first: without a browser the test skips before the system starts.
    # Catches: /docs loading Swagger UI (script, style sheet, icon) from a CDN, which leaves the
    # page blank on a closed network; assets missing from the package; a Swagger UI that
    # cannot read the OpenAPI 3.1 document (4.x shows an error instead of the operations);
    # and a Content-Security-Policy that blocks the page's own start-up script.
    dom, log = await asyncio.to_thread(offline_dom, chromium, f"{system.api_url}/docs")
    # The operations rendered from /openapi.json, each an operation block naming its path.
    assert 'class="swagger-ui' in dom
    assert re.search(r'class="opblock opblock-get[^"]*"[^>]*id="operations-metrics-', dom)
    assert 'data-path="/v1/metrics/{metric}/items"' in dom
    assert 'data-path="/v1/metrics"' in dom
    assert "Content Security Policy" not in log, log

    async with httpx.AsyncClient(base_url=system.api_url) as http:
        page = await http.get("/docs")
        # Nothing in the page names another host: every reference is a path on this one.
        assert not re.search(r"(?:src|href|url)\s*[=:]\s*[\"'](?:[a-z]+:)?//", page.text, re.I)
        assets = [await http.get(src) for src in re.findall(r'(?:src|href)="([^"]+)"', page.text)]
        redoc = await http.get("/redoc")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp and "default-src 'none'" in csp
    assert len(assets) == 3 and all(a.status_code == 200 for a in assets)
    assert {a.headers["content-type"].split(";")[0] for a in assets} == {
        "text/javascript",
        "text/css",
        "image/png",
    }
    assert redoc.status_code == 308 and redoc.headers["location"] == "/docs"
