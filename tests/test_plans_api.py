"""POST /v1/plans:check over real HTTP against the running system."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.test_plans import VALID, edit, line_of

pytestmark = pytest.mark.asyncio(loop_scope="session")

YAML = {"Content-Type": "application/yaml"}


async def test_a_plan_is_checked_as_the_start_would_check_it_admin_only(system: Any) -> None:
    # Catches: a check that passes what `motcua up` refuses at its start (or the reverse), an
    # error without its line, a plan id@version that is already running taken as new, and a
    # non-admin key allowed to use it.
    bad = edit(VALID, 'comparator: "<"', 'comparator: "=<"')
    running = edit(VALID, "id: test-plan", "id: kh-7860-2022")
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        created = await http.post("/v1/keys", json={"name": "Xem", "role": "auditor"})
        auditor = {"Authorization": f"Bearer {created.json()['key']}", **YAML}
        ok = await http.post("/v1/plans:check", content=VALID.encode(), headers=YAML)
        wrong = await http.post("/v1/plans:check", content=bad.encode(), headers=YAML)
        dup = await http.post("/v1/plans:check", content=running.encode(), headers=YAML)
        junk = await http.post("/v1/plans:check", content=b"\xff\xfe", headers=YAML)
        denied = await http.post("/v1/plans:check", content=VALID.encode(), headers=auditor)
        targets = await http.get("/v1/targets", params={"plan": "test-plan@1"})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["plan"]["key"] == "test-plan@1"
    assert [t["id"] for t in body["targets"]] == ["land-late", "online"]
    assert wrong.status_code == 422
    assert wrong.json()["detail"].startswith(f"plan.yaml:{line_of(bad, '=<')}: ")
    assert dup.status_code == 422
    assert dup.json()["detail"] == (
        "plan.yaml:1: plan 'kh-7860-2022@1' is already loaded; a changed plan gets a new version"
    )
    assert junk.status_code == 422 and "not UTF-8" in junk.json()["detail"]
    assert denied.status_code == 403
    # nothing was loaded: the running system still does not know the plan
    assert targets.status_code == 404
    assert targets.json()["detail"].startswith("unknown plan 'test-plan@1'")


# A "billion laughs": nine levels of nine aliases, 370 bytes that expand to 9^9 strings.
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


async def test_anchors_aliases_and_huge_files_are_refused_at_once(system: Any) -> None:
    # Catches: a YAML alias bomb expanded (21.7 s and +1.4 GB of RSS for 370 bytes, issue 14
    # finding 6), anchors accepted at all, or a body held whole however large.
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        bomb = await http.post("/v1/plans:check", content=BOMB.encode(), headers=YAML)
        anchored = edit(VALID, "id: test-plan", "id: &name test-plan")
        anchor = await http.post("/v1/plans:check", content=anchored.encode(), headers=YAML)
        huge = await http.post("/v1/plans:check", content=b"#" * 300_000, headers=YAML)
    assert len(BOMB) < 400
    assert bomb.status_code == 422  # refused from the event stream, never expanded
    assert bomb.json()["detail"] == ("plan.yaml:1: anchor &a: plan files may not use YAML anchors")
    assert anchor.status_code == 422
    assert anchor.json()["detail"] == (
        f"plan.yaml:{line_of(anchored, '&name')}: anchor &name: plan files may not use YAML anchors"
    )
    assert huge.status_code == 413
