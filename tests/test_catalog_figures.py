"""Figures that need the TTHC catalogue, and withdrawn dossiers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from tests.helpers import dossier_event, eventually, publish, received, resolved
from tests.test_pipeline import d, stored

pytestmark = pytest.mark.asyncio(loop_scope="session")
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def procedure(code: str, *, full_online: bool) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "reference.procedure",
        "schema_version": 1,
        "occurred_at": "2025-01-01T00:00:00+07:00",
        "source": "test-suite",
        "procedure_code": code,
        "name": f"Thủ tục {code}",
        "domain_code": "dat_dai",
        "processing_days": 5,
        "processing_unit": "working_day",
        "fee_bearing": False,
        "paper_result_required": True,
        "online_level": "full" if full_online else "partial",
        "full_online_eligible": full_online,
        "online_payment_integrated": False,
        "levels": ["province"],
        "decision_date": "2025-01-01",
        "legal_basis_effective_date": "2025-01-15",
        "public_in_national_db_at": "2025-01-03",
        "parts_complete": True,
        "valid_from": "2025-01-01",
        "valid_to": None,
    }


async def test_full_online_share_uses_the_catalogue_and_e_results_count(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a full-online share over all dossiers instead of those of eligible procedures, and
    # e-results counted for dossiers that need no paper result.
    a = agency
    full, partial = (f"9.{uuid.uuid4().int % 10**6:06d}" for _ in range(2))
    for p in (procedure(full, full_online=True), procedure(partial, full_online=False)):
        await publish(
            nc, p, subject=f"motcua.reference.procedure.{p['procedure_code'].replace('.', '_')}"
        )

    def catalogued() -> bool:
        return (
            clickhouse.query(
                "SELECT count() FROM procedures_current "
                "WHERE procedure_code IN ({a:String}, {b:String})",
                parameters={"a": full, "b": partial},
            ).result_rows[0][0]
            == 2
        )

    await eventually(catalogued)
    events = []
    for i, (code, channel) in enumerate([(full, "online"), (full, "direct"), (partial, "online")]):
        e = received(a, f"F{i}", d(2), due=d(9, 17), channel=channel)
        e["procedure_code"], e["paper_result_required"] = code, True
        events.append(e)
        done = resolved(a, f"F{i}", d(4))
        done["e_result"] = i != 1
        events.append(done)
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        full_online = (
            await http.get("/v1/metrics/full_online_share", params={**MARCH, "agency": a})
        ).json()
        e_result = (
            await http.get("/v1/metrics/e_result_share", params={**MARCH, "agency": a})
        ).json()
    # eligible: F0 (online), F1 (direct) → 1/2; the partial procedure's F2 is not counted
    g = full_online["groups"][0]
    assert (g["numerator"], g["denominator"]) == (1, 2)
    # paper result required for all three; e-results for F0 and F2 → 2/3
    g = e_result["groups"][0]
    assert (g["numerator"], g["denominator"]) == (2, 3)


async def test_withdrawn_dossiers_end_processing(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a withdrawn dossier left open forever (it would turn overdue and break 3 = 7 + 11)
    # or counted without the rule set saying so.
    a = agency
    events = [
        received(a, "W1", d(2), due=d(9, 17)),
        dossier_event("withdrawn", a, "W1", d(3)),  # withdrawn before due → early
        received(a, "W2", d(2), due=d(4, 17)),
        dossier_event("withdrawn", a, "W2", d(6)),  # withdrawn after due → late
    ]
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        report = (await http.get("/v1/reports/ii06a", params={**MARCH, "agency": a})).json()
        overdue = (
            await http.get("/v1/metrics/open_overdue_rate", params={**MARCH, "agency": a})
        ).json()
    row = report["rows"][0]
    # both finished in March (W1 early, W2 late), none pending: 3 = 7 + 11 → 2 = 2 + 0
    assert (row["resolved_early"], row["resolved_late"], row["pending_total"]) == (1, 1, 0)
    assert overdue["groups"] == []
