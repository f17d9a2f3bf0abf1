"""Rule sets are data: a figure names the rules that produced it, and the rules matter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.figures import rules
from tests.helpers import dossier_event, eventually, publish, received, resolved
from tests.test_pipeline import d, stored


@pytest.mark.asyncio(loop_scope="session")
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

    async def late_rate(http: httpx.AsyncClient, rule_set: str | None) -> dict[str, Any]:
        params = base if rule_set is None else {**base, "rule_set": rule_set}
        body: dict[str, Any] = (await http.get("/v1/metrics/late_rate", params=params)).json()
        return body

    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        default = await late_rate(http, None)
        answers = {
            rs: await late_rate(http, rs)
            for rs in ("reference@1", "lenient-boundary@1", "reference@2", "lenient-boundary@2")
        }
        unknown = await http.get("/v1/metrics/late_rate", params={**base, "rule_set": "nope@9"})
        listing = (await http.get("/v1/rule-sets")).json()
    # reference: B1 late + B2 late (2 supplements) = 2/2; lenient: only B2 → 1/2. Version 2
    # changed no timeliness rule: the same under both versions.
    want = {"reference": (2, 2), "lenient-boundary": (1, 2)}
    for rule_set, body in answers.items():
        group = body["groups"][0]
        assert (group["numerator"], group["denominator"]) == want[rule_set.split("@")[0]]
        assert body["provenance"]["rule_set"] == rule_set
    assert default["provenance"]["rule_set"] == "reference@2"
    assert default["groups"] == answers["reference@2"]["groups"]
    assert unknown.status_code == 422
    assert {r["id"] for r in listing} == set(rules.available())
    assert [r["id"] for r in listing if r["default"]] == ["reference@2"]


def _changed(a: str, b: str) -> set[str]:
    first, second = rules.get(a).rules.model_dump(), rules.get(b).rules.model_dump()
    return {k for k in first if first[k] != second[k]}


@pytest.mark.pure
def test_version_2_changes_only_the_rules_issue_15_names() -> None:
    # Catches: reference@2 (the default) drifting from reference@1 in a rule issue 15 did not
    # change, a lenient variant that does not follow its reference, and a version 1 set whose
    # answers moved (its rules must read as they did before the new fields existed).
    issue_15 = {"apology_population", "rate_unit", "points_from"}
    assert rules.DEFAULT_RULE_SET == "reference@2"
    assert _changed("reference@1", "reference@2") == issue_15
    assert _changed("lenient-boundary@1", "lenient-boundary@2") == issue_15
    assert _changed("reference@1", "lenient-boundary@1") == {"on_time_boundary", "score_4_2"}
    assert _changed("reference@2", "lenient-boundary@2") == {"on_time_boundary", "score_4_2"}
    for old in ("reference@1", "lenient-boundary@1"):
        r = rules.get(old).rules
        assert (r.apology_population, r.rate_unit, r.points_from) == (
            "late",
            "fraction",
            "rounded_rate",
        )
        assert rules.get(old).sql_params()["apology_missed_due_only"] == 0
    assert rules.get("reference@2").sql_params()["apology_missed_due_only"] == 1
