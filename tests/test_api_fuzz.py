"""Schemathesis against the running API (real uvicorn, real chDB store): every operation of the
OpenAPI document that only reads (GET), with valid and invalid generated requests, must never
answer 5xx, and a 2xx answer must match its documented schema and content type.

Bounded: a few examples per operation and mode, no shrinking phase beyond what a failure needs,
so the whole file runs in about a minute on two CPUs. Figures are printed (pytest -s).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Examples per operation and generation mode; MOTCUA_FUZZ_EXAMPLES raises it for a long run.
EXAMPLES = int(os.environ.get("MOTCUA_FUZZ_EXAMPLES", "15"))


@dataclass
class FuzzRun:
    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _send(http: httpx.Client, case: Any, base_url: str, headers: dict[str, str]) -> httpx.Response:
    """Send a case with httpx. Schemathesis's own transport (requests) breaks here: grafana-client
    pulls in niquests, whose urllib3-future replaces the `urllib3` module that transport reads."""
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        body["content"] = kwargs["data"]
    # httpx frames the body itself; a Content-Length a case carries (one negative case sent
    # an invalid one) would make the client refuse to send it, and nothing reach the API
    sent = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "content-length"}
    return http.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=sent,
        **body,
    )


def fuzz(base_url: str, headers: dict[str, str]) -> FuzzRun:
    """Blocking: run in a thread, so the session's event loop keeps serving the API."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers=headers)
    run = FuzzRun()
    with httpx.Client(timeout=60) as http:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.method.upper() != "GET":
                # Writes (API keys, a metrics recompute) would change the session store other
                # tests read, and their auth is the keys' own tests' business.
                run.skipped.append(operation.label)
                continue
            run.operations += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    _fuzz_operation(http, operation, mode, base_url, headers, run)
                except Unsatisfiable:  # no parameter to get wrong (GET /healthz): nothing to do
                    continue
                except Exception as exc:  # one line per failing operation, all reported at the end
                    first = str(exc).strip().splitlines()[:12]
                    run.failures.append(f"{operation.label} [{mode.value}]: " + " | ".join(first))
    return run


def _fuzz_operation(
    http: httpx.Client,
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    run: FuzzRun,
) -> None:
    # 2xx bodies must match their models; 4xx bodies the error schema the document gives
    # (services/api/auth.py, _document_errors: {"detail": text or field errors}).
    answered = [not_a_server_error, response_schema_conformance, content_type_conformance]
    refused = [not_a_server_error, response_schema_conformance]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: a failure reproduces
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = _send(http, case, base_url, headers)
        run.cases += 1
        run.statuses[response.status_code] += 1
        ok = response.status_code < 400 and mode is GenerationMode.POSITIVE
        case.validate_response(response, checks=answered if ok else refused)

    check()


async def test_no_generated_request_gets_a_server_error(system: Any, clickhouse: Client) -> None:
    # Catches: a 500 on any input the OpenAPI document allows (or an invalid one it does not),
    # e.g. a date at the edge of the calendar, a NUL byte in a filter, an absurd page number,
    # and a 2xx answer that does not match the response model the document promises (it found
    # dead letters' times served without their offset).
    # A dead letter with bytes that are not UTF-8, so the dead-letter routes answer with rows
    # whatever ran before in the session.
    now = datetime.now(UTC)
    clickhouse.insert(
        "dead_letters",
        [
            (
                now,
                "motcua.events.FUZZ.dossier.received",
                1,
                now,
                "FUZZ",
                "",
                "invalid_json",
                "-",
                b"\xff{",
            )
        ],
        column_names=[
            "dead_lettered_at",
            "subject",
            "stream_seq",
            "published_at",
            "agency_code",
            "source",
            "reason",
            "detail",
            "raw",
        ],
    )
    run = await asyncio.to_thread(fuzz, system.api_url, system.api_headers)
    print(
        f"\nschemathesis: {run.operations} operations, {run.cases} cases, "
        f"statuses {dict(sorted(run.statuses.items()))}; not fuzzed: {', '.join(run.skipped)}"
    )
    assert run.operations >= 15 and run.cases >= run.operations * 2
    assert not run.failures, "\n".join(run.failures)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/dossiers/X/events?as_of=0371-04-18T06:30:30.803Z",
        "/v1/reports/ii06a?as_of=0392-09-07T22:41:18%2B01:52",
        "/v1/metrics/online_share?from=0001-01-01&to=9999-12-31",
        "/v1/metrics/online_share?as_of=0001-01-01T00:00:00Z",
        "/v1/dead-letters?from=0001-01-01&to=9999-12-31",
        "/v1/dead-letters/summary?from=0001-01-01&to=9999-12-31",
        "/v1/index766?from=2021-06-11&to=2021-07-01",  # before the working-day calendars
        "/v1/metrics/feedback_answered_on_time?from=2021-06-11&to=2021-07-01",
        "/?nam=2021",
    ],
)
async def test_dates_outside_the_storable_range_are_not_server_errors(
    system: Any, path: str
) -> None:
    # Catches: the 500s schemathesis found (year 371 or 9999 reaching ClickHouse's DateTime64,
    # or overflowing Python's datetime; a period before the working-day calendars), pinned so
    # they stay fixed without a lucky draw.
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        response = await http.get(path)
    assert response.status_code < 500, response.text
