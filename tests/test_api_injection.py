"""SQL-looking values in every parameter of every API route: a 4xx or the same answer as for an
unknown plain value, never a 5xx and never more data. Every query binds its values as ClickHouse
parameters; this is the check that nothing a request carries reaches the SQL text."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from clickhouse_connect.driver.client import Client

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOSTILE = (
    "x' OR 1=1 --",
    "x\\') OR (1=1 OR ('",
    "{agency:String}",
    "1; DROP TABLE events --",
)
PLAIN = "ZZKHONGCO"
# Sample values for the path parameters a request needs when another parameter is under test.
PATH_SAMPLES = {
    "metric": "on_time_rate",
    "target_id": "no-such-target",
    "dossier_id": "NO-SUCH",
    "feedback_id": "NO-SUCH",
    "agency_code": "KHONGCO",
    "agency": "KHONGCO",
    "day": "2026-03-02",
}
# Fields that change with the clock between two requests, or digest the requested codes (the
# org-tree version of the scope), rather than show stored data.
_MOVING = {"judged_at", "evaluated_at", "last_ingested_at", "watermark", "org_tree", "computed_at"}


def _is_text(schema: dict[str, Any]) -> bool:
    """A free-text parameter (string or list of strings), not a date, number or enum."""
    options = schema.get("anyOf", [schema])
    for option in options:
        item = option.get("items", option) if option.get("type") == "array" else option
        if item.get("type") == "string" and "format" not in item and "enum" not in item:
            return True
    return False


def _same(value: Any, hostile: str) -> Any:
    """The answer with the value under test written as PLAIN, moving fields dropped."""
    if isinstance(value, dict):
        return {k: _same(v, hostile) for k, v in value.items() if k not in _MOVING}
    if isinstance(value, list):
        return [_same(v, hostile) for v in value]
    if isinstance(value, str):
        return value.replace(hostile, PLAIN)
    return value


def _cases(schema: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(path template, parameter, where, kind) for every parameter of every GET operation."""
    out = []
    for template, operations in schema["paths"].items():
        get = operations.get("get")
        for param in (get or {}).get("parameters", []):
            kind = "text" if _is_text(param["schema"]) else "typed"
            out.append((template, param["name"], param["in"], kind))
    # The public page is HTML outside the schema.
    out.append(("/co-quan/{agency_code}", "agency_code", "path", "text"))
    out.append(("/", "nam", "query", "text"))
    return out


async def _ask(http: httpx.AsyncClient, template: str, name: str, where: str, value: str) -> Any:
    path = template
    for key, sample in PATH_SAMPLES.items():
        path = path.replace(f"{{{key}}}", quote(value, safe="") if key == name else sample)
    params = {name: value} if where == "query" else None
    return await http.get(path, params=params)


async def test_sql_looking_values_never_reach_the_sql(system: Any, clickhouse: Client) -> None:
    # Catches: a request value formatted into SQL anywhere behind the API (a 5xx from a broken
    # statement, or a filter that an injected OR widened into other agencies' data).
    events_before = clickhouse.query("SELECT count() FROM events").result_rows[0][0]
    async with httpx.AsyncClient(
        base_url=system.api_url, headers=system.api_headers, timeout=120
    ) as http:
        schema = (await http.get("/openapi.json")).json()
        cases = _cases(schema)
        assert len(cases) > 40  # every route's parameters, not a few
        tried = 0
        for template, name, where, kind in cases:
            baseline = await _ask(http, template, name, where, PLAIN)
            for value in HOSTILE if kind == "text" else HOSTILE[:1]:
                r = await _ask(http, template, name, where, value)
                tried += 1
                assert r.status_code < 500, (template, name, value, r.text[:300])
                if r.status_code >= 400:
                    continue
                assert r.status_code == baseline.status_code, (template, name, value)
                if "json" in r.headers["content-type"]:
                    expected = _same(baseline.json(), PLAIN)
                    assert _same(r.json(), value) == expected, (template, name, value)
    assert tried > 100
    events_after = clickhouse.query("SELECT count() FROM events").result_rows[0][0]
    assert events_after >= events_before  # nothing dropped or deleted


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO store_write_probe (writer) VALUES ('api')",
        "TRUNCATE TABLE store_write_probe",  # harmless if a regression lets it through
        "CREATE TABLE injected (a UInt8) ENGINE = Memory",
        "SELECT 1 SETTINGS readonly = 0",
    ],
)
async def test_the_api_reads_through_a_client_the_engine_keeps_read_only(
    system: Any, sql: str
) -> None:
    # Catches: the embedded API given the writing client, so an injection (or a bug) that got
    # SQL through could change or drop data; the counterpart of api_ro on a server.
    reader = system.api_clickhouse
    assert reader is not None
    assert reader.query("SELECT count() FROM events").result_rows  # reads work
    with pytest.raises(Exception, match="READONLY|readonly"):
        reader.command(sql)
