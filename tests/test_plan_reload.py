"""A plan file added, corrected, broken or removed while the system runs (core/plans/source.py):
taken without a restart; a broken file changes nothing and says why; the alerts of a removed
plan are resolved, not left firing for ever."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.plans.checks import AgencySpan, Reference
from core.plans.monitor import PlanMonitor
from core.plans.source import PlanSource
from services.metrics.service import MetricsService
from tests.helpers import TEST_ADMIN_HEADERS, VN, eventually, publish, received, resolved
from tests.test_pipeline import stored
from tests.test_targets_year import _api


def plan_text(plan_id: str, agency: str, *, version: int = 1, threshold: str = "0.02") -> str:
    return f"""
id: {plan_id}
version: {version}
title: Kế hoạch thử nghiệm nạp lại
document: Thử nghiệm
issued_by: Bộ kiểm thử
valid: {{from: 2022-01-01, to: 2022-12-31}}
targets:
  - id: land-late
    text: Tỷ lệ hồ sơ trễ hạn lĩnh vực đất đai dưới 2%
    clause: A.IV.5
    metric: late_rate
    scope: {{agencies: [{agency}], domains: [dat_dai]}}
    comparator: "<"
    threshold: {threshold}
    in_charge: {agency}
    applies_to: each_agency
    min_count: 3
"""


def reference(*codes: str) -> Reference:
    spans = {c: (AgencySpan(None, "province", date(2000, 1, 1), None),) for c in codes}
    return Reference(spans, frozenset({"dat_dai"}))


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # A later write in the same clock tick must still look changed (coarse mtime on some disks).
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_added_corrected_broken_and_removed_files(tmp_path: Path) -> None:
    # Catches: a new plan needing a restart; a broken file taking the plans in force down with it
    # (or silently dropping the plan it replaced); an error that does not name the line; a
    # removed file whose plan stays in force.
    ref = reference("RELOADA")
    write(tmp_path / "a.yaml", plan_text("reload-a", "RELOADA"))
    source = PlanSource(tmp_path, reference=ref, packaged=False)
    assert list(source) == ["reload-a@1"]
    assert source.refresh() is False  # nothing changed

    write(tmp_path / "b.yaml", plan_text("reload-b", "RELOADA"))
    assert source.refresh() is True
    assert sorted(source) == ["reload-a@1", "reload-b@1"]

    broken = plan_text("reload-b", "RELOADA", threshold="'two percent'")
    write(tmp_path / "b.yaml", broken)
    assert source.refresh() is False
    line = broken.splitlines().index("    threshold: 'two percent'") + 1
    assert source.error is not None and source.error.startswith(f"{tmp_path / 'b.yaml'}:{line}:")
    assert sorted(source) == ["reload-a@1", "reload-b@1"]  # the plans in force stay
    assert source["reload-b@1"].targets[0].threshold == 0.02

    write(tmp_path / "b.yaml", plan_text("reload-b", "RELOADA", version=2, threshold="0.01"))
    assert source.refresh() is True
    assert source.error is None
    assert sorted(source) == ["reload-a@1", "reload-b@2"]

    (tmp_path / "b.yaml").unlink()
    assert source.refresh() is True
    assert list(source) == ["reload-a@1"]


@pytest.mark.asyncio(loop_scope="session")
async def test_the_api_sees_a_new_file_within_seconds_without_a_restart(
    clickhouse: Client, tmp_path: Path
) -> None:
    # Catches: an API that loaded the plans once (compose runs it as its own process).
    write(tmp_path / "a.yaml", plan_text("reload-a", "RELOADA"))
    source = PlanSource(tmp_path, reference=reference("RELOADA"), packaged=False, check_every=0.0)
    async with (
        _api(clickhouse, source) as base,
        httpx.AsyncClient(base_url=base, headers=TEST_ADMIN_HEADERS) as http,
    ):
        before = (await http.get("/v1/targets")).json()
        write(tmp_path / "c.yaml", plan_text("reload-c", "RELOADA"))
        after = (await http.get("/v1/targets")).json()
    assert {t["plan"] for t in before["targets"]} == {"reload-a@1"}
    assert {t["plan"] for t in after["targets"]} == {"reload-a@1", "reload-c@1"}


@pytest.mark.asyncio(loop_scope="session")
async def test_alerts_of_a_removed_plan_are_resolved(
    system: Any, nc: NatsClient, clickhouse: Client, tmp_path: Path, agency: str
) -> None:
    # Catches: an alert of a plan that is no longer in force staying "firing" for ever (nothing
    # evaluates it any more), and a metrics service that never re-reads the plan files.
    code = f"{agency}RL"
    for i in range(4):  # 4 land dossiers of 2022, all late: the 2% ceiling is missed
        start = datetime(2022, 3, 1 + i, 9, tzinfo=VN)
        await publish(nc, received(code, f"RL{i}", start, due=start.replace(day=10 + i)))
        await publish(nc, resolved(code, f"RL{i}", start.replace(day=20)))

    # Folded into state, which the statuses read (it commits after the raw insert).
    await eventually(lambda: stored(clickhouse, code) == 8)
    write(tmp_path / "r.yaml", plan_text("reload-r", code))
    source = PlanSource(tmp_path, reference=reference(code), packaged=False)
    monitor = PlanMonitor(clickhouse, source)
    at = datetime(2023, 1, 10, tzinfo=UTC)
    service = MetricsService(
        clickhouse, monitor=monitor, plan_source=source, clock=lambda: at, interval=3600
    )
    await service._evaluate_plans()
    assert service.status.plans_loaded == ["reload-r@1"]

    async def alerts(state: str) -> list[dict[str, Any]]:
        async with (
            _api(clickhouse, source) as base,
            httpx.AsyncClient(base_url=base, headers=TEST_ADMIN_HEADERS) as http,
        ):
            r = await http.get("/v1/alerts", params={"agency": code, "state": state})
        assert r.status_code == 200, r.text
        body: list[dict[str, Any]] = r.json()
        return body

    firing = await alerts("firing")
    assert [(a["plan"], a["status"]) for a in firing] == [("reload-r@1", "missed")]

    # The office replaces the plan by version 2: version 1's alert is resolved as withdrawn, and
    # version 2 (same threshold, same data) fires its own.
    write(tmp_path / "r.yaml", plan_text("reload-r", code, version=2))
    await service._evaluate_plans()
    assert service.status.plans_loaded == ["reload-r@2"]
    assert [(a["plan"], a["status"]) for a in await alerts("firing")] == [("reload-r@2", "missed")]
    resolved_ = await alerts("resolved")
    assert [(a["plan"], a["status"], a["seq"]) for a in resolved_] == [
        ("reload-r@1", "withdrawn", 2)
    ]
    assert "không còn trong kế hoạch" in resolved_[0]["summary"]

    # A broken edit: nothing changes, the error is in the status (GET /v1/pipeline shows it).
    write(tmp_path / "r.yaml", "id: reload-r\nversion: [\n")
    await service._evaluate_plans()
    assert service.status.plans_loaded == ["reload-r@2"]
    assert (service.status.plans_file_error or "").startswith(str(tmp_path / "r.yaml"))
    assert [a["plan"] for a in await alerts("firing")] == ["reload-r@2"]

    # Removed: its alert resolves too, once.
    (tmp_path / "r.yaml").unlink()
    await service._evaluate_plans()
    await service._evaluate_plans()
    assert service.status.plans_loaded == [] and service.status.plans_file_error is None
    assert await alerts("firing") == []
    history = clickhouse.query(
        "SELECT plan, seq, state, status FROM alerts FINAL WHERE agency_code = {a:String} "
        "ORDER BY plan, seq",
        parameters={"a": code},
    ).result_rows
    assert history == [
        ("reload-r@1", 1, "firing", "missed"),
        ("reload-r@1", 2, "resolved", "withdrawn"),
        ("reload-r@2", 1, "firing", "missed"),
        ("reload-r@2", 2, "resolved", "withdrawn"),
    ]
