"""Rule sets are data: a figure names the rules that produced it, and the rules matter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from services.metrics import rules
from tests.helpers import dossier_event, eventually, publish, received, resolved
from tests.test_pipeline import d, stored

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_boundary_and_supplement_rules_change_the_figure(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a rule hard-coded in SQL (the variant would change nothing), or a figure that does
    # not say which rule set produced it.
    a = agency
    events = [
        # due 3/5 10:00, resolved 3/5 15:00: same date but after the due time.
        # reference (date boundary): late; lenient (end of the due date): on time.
        received(a, "B1", d(2), due=d(5, 10)),
        resolved(a, "B1", d(5, 15)),
        # two supplement requests, resolved well before due: late under both rule sets
        received(a, "B2", d(2), due=d(20, 17)),
        dossier_event("supplement_requested", a, "B2", d(3)),
        dossier_event("supplement_received", a, "B2", d(4)),
        dossier_event("supplement_requested", a, "B2", d(5)),
        dossier_event("supplement_received", a, "B2", d(6)),
        resolved(a, "B2", d(7)),
    ]
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))
    base = {"from": "2026-03-01", "to": "2026-03-31", "agency": a}
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        ref = (await http.get("/v1/metrics/late_rate", params=base)).json()
        lenient = (
            await http.get(
                "/v1/metrics/late_rate", params={**base, "rule_set": "lenient-boundary@1"}
            )
        ).json()
        unknown = await http.get("/v1/metrics/late_rate", params={**base, "rule_set": "nope@9"})
        listing = (await http.get("/v1/rule-sets")).json()
    # reference: B1 late + B2 late (2 supplements) = 2/2; lenient: only B2 → 1/2
    assert (ref["groups"][0]["numerator"], ref["groups"][0]["denominator"]) == (2, 2)
    assert (lenient["groups"][0]["numerator"], lenient["groups"][0]["denominator"]) == (1, 2)
    assert ref["provenance"]["rule_set"] == "reference@1"
    assert lenient["provenance"]["rule_set"] == "lenient-boundary@1"
    assert unknown.status_code == 422
    assert {r["id"] for r in listing} == set(rules.available())
    assert [r["id"] for r in listing if r["default"]] == ["reference@1"]
