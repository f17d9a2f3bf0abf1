"""The compose process split, `motcua migrate`, `ingest`, `metrics` and `api`, each a subprocess
started as compose starts it (motcua/processes.py), with a real nats-server.

One chDB directory stands in for the ClickHouse server, which cannot run here. chDB opens a
directory in one process at a time, so the services run one after the other, where compose runs
them side by side. What is checked is what only this shape exercises: each process's own wiring
(settings, its NATS connection, its plan folder, the API's read-only key store).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient

from core.messaging.nats_server import EmbeddedNats, free_port
from tests.helpers import TEST_ADMIN_HEADERS, TEST_ADMIN_KEY, VN, eventually, received, resolved

pytestmark = pytest.mark.asyncio(loop_scope="session")

AGENCY = "STNMT"  # in the packaged reference data, which plan files are checked against
PLAN = """
id: processes-test
version: 1
title: Kế hoạch thử nghiệm các tiến trình
document: Thử nghiệm
issued_by: Bộ kiểm thử
valid: {from: 2025-01-01, to: 2025-12-31}
targets:
  - id: land-late
    text: Tỷ lệ hồ sơ trễ hạn lĩnh vực đất đai dưới 2%
    clause: A.IV.5
    metric: late_rate
    scope: {agencies: [STNMT], domains: [dat_dai]}
    comparator: "<"
    threshold: 0.02
    in_charge: STNMT
    applies_to: each_agency
    min_count: 3
"""


class Process:
    """`motcua <command>` with its output in a file: a pipe nobody reads while it runs could
    fill up and block the process."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "motcua.cli", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout: float) -> str:
        """Wait for it to exit (0, or the test fails with its output); returns the output."""
        self.proc.wait(timeout=timeout)
        out = self.log.read_text(encoding="utf-8", errors="replace")
        assert self.proc.returncode == 0, out
        return out

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        return self.wait(60)


async def test_migrate_ingest_metrics_api_each_in_its_own_process(
    tmp_path: Path, own_nats: tuple[EmbeddedNats, NatsClient]
) -> None:
    # Catches: a service that only works inside `motcua up` (settings, connections or plans
    # wired there and not in motcua/processes.py), an API that cannot check the bootstrap key
    # `motcua migrate` stored, one that writes keys through its read-only store, and a metrics
    # process that ignores MOTCUA_PLANS_DIR or cannot publish its alerts.
    server, nc = own_nats
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "processes-test.yaml").write_text(PLAN, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "MOTCUA_DATA_DIR": str(tmp_path / "data"),
        "MOTCUA_NATS_URL": server.url,
        "MOTCUA_BOOTSTRAP_ADMIN_KEY": TEST_ADMIN_KEY,
        "MOTCUA_PLANS_DIR": str(plans),
        "MOTCUA_API_PORT": str(port),
        "MOTCUA_INGEST_FLUSH_INTERVAL": "0.05",
    }
    running: list[Process] = []
    try:
        out = Process(env, tmp_path / "migrate.log", "migrate").wait(120)
        assert "bootstrap admin API key stored" in out and "streams declared" in out

        # ingest: five land dossiers of March 2025, every one resolved late.
        running.append(ingest := Process(env, tmp_path / "ingest.log", "ingest"))
        js = nc.jetstream()
        events = []
        for i in range(5):
            start = datetime(2025, 3, 3 + i, 9, tzinfo=VN)
            events.append(received(AGENCY, f"P{i}", start, due=start.replace(day=12)))
            events.append(resolved(AGENCY, f"P{i}", start.replace(day=20)))
        for e in events:
            subject = f"motcua.events.{AGENCY}.{e['type']}"
            await js.publish(
                subject, json.dumps(e).encode(), headers={"Nats-Msg-Id": e["event_id"]}
            )

        async def drained() -> bool:
            try:
                info = await js.consumer_info("MOTCUA_EVENTS", "motcua-ingest")
            except nats.js.errors.NotFoundError:
                return False  # not created yet
            return (
                info.num_pending == 0
                and info.num_ack_pending == 0
                and info.delivered.stream_seq >= len(events)
            )

        await eventually(drained, timeout=120)
        running.remove(ingest)
        ingest.stop()

        # metrics: computes the figures and evaluates the plan found in MOTCUA_PLANS_DIR; its
        # alert comes on motcua.alerts.<agency>.
        alerts: list[dict[str, Any]] = []

        async def on_alert(msg: Any) -> None:
            alerts.append(json.loads(msg.data))

        await nc.subscribe("motcua.alerts.>", cb=on_alert)
        running.append(metrics := Process(env, tmp_path / "metrics.log", "metrics"))
        await eventually(lambda: len(alerts) == 2, timeout=120)
        running.remove(metrics)
        metrics.stop()
        # The agency's row, and the scope's (agency_code ""), addressed to its one agency.
        assert sorted((a["plan"], a["agency_code"], a["state"], a["status"]) for a in alerts) == [
            ("processes-test@1", "", "firing", "missed"),
            ("processes-test@1", AGENCY, "firing", "missed"),
        ]

        # api: the same answers over HTTP, the bootstrap key accepted, key writes refused.
        running.append(api := Process(env, tmp_path / "api.log", "api"))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=TEST_ADMIN_HEADERS, timeout=30
        ) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=60)
            late = (
                await http.get(
                    "/v1/metrics/late_rate",
                    params={"agency": AGENCY, "from": "2025-03-01", "to": "2025-03-31"},
                )
            ).json()
            targets = (await http.get("/v1/targets", params={"plan": "processes-test@1"})).json()
            firing = (await http.get("/v1/alerts", params={"agency": AGENCY})).json()
            new_key = await http.post("/v1/keys", json={"name": "x", "role": "viewer"})
            anonymous = await http.get("/v1/targets", headers={"Authorization": ""})
            page = await http.get(f"/co-quan/{AGENCY}", params={"nam": "2025"})
        running.remove(api)
        api.stop()
        # Its port taken: one line and exit code 3, as `motcua up` says it (issue 15), not
        # uvicorn's error log and exit 1.
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            taken = {**env, "MOTCUA_API_PORT": str(holder.getsockname()[1])}
            busy = Process(taken, tmp_path / "api-busy.log", "api")
            busy.proc.wait(timeout=120)
        refusal = busy.log.read_text(encoding="utf-8").strip()
        assert busy.proc.returncode == 3, refusal
        assert refusal.splitlines()[-1].startswith("motcua api: the API's port"), refusal
        assert "Traceback" not in refusal
        assert late["groups"] == [{"group": None, "numerator": 5, "denominator": 5, "rate": 1.0}]
        (target,) = targets["targets"]
        assert {(s["agency_code"], s["status"]) for s in target["statuses"]} == {
            (None, "missed"),  # the scope as a whole
            (AGENCY, "missed"),
        }
        assert [(a["plan"], a["status"]) for a in firing] == [("processes-test@1", "missed")]
        assert new_key.status_code == 501 and "motcua keys" in new_key.text
        assert anonymous.status_code == 401
        assert page.status_code == 200 and "Không đạt" in page.text
    finally:
        for process in running:
            process.proc.kill()
            process.proc.wait()
