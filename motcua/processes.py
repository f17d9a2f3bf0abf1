"""One service per process, as docker-compose runs them. Each needs MOTCUA_NATS_URL and, for more
than one process, a ClickHouse server URL (a chDB directory opens in one process only).

Each command runs its process's entry point (services/*/main.py) with the settings of `motcua`
(motcua/settings.py); what is the command's, not the process's, is here: the signals that stop
it, the required NATS URL, the API's port checked as `motcua up` checks it."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

from core.messaging.client import connect_nats
from motcua import preflight
from motcua.settings import Settings
from services.api import main as api_main
from services.ingest import main as ingest_main
from services.metrics import main as metrics_main


def _nats_url(settings: Settings) -> str:
    if not settings.nats_url:
        raise SystemExit("MOTCUA_NATS_URL must be set when a service runs on its own")
    return settings.nats_url


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_ingest(settings: Settings) -> None:
    stop = _stop_event()
    await ingest_main.run(settings, _nats_url(settings), stop)


async def run_metrics(settings: Settings) -> None:
    await metrics_main.run(settings, _stop_event())


async def run_api(settings: Settings) -> None:
    # A busy port: one line and exit code 3 (motcua/cli.py), not uvicorn's log and exit 1.
    await api_main.run(
        settings, _nats_url(settings), stop_on_signal=_stop_event, listen=preflight.bind_api
    )


async def run_simulate(settings: Settings) -> None:
    from tools.simulator.publisher import run_simulator

    stop = _stop_event()
    nc = await connect_nats(_nats_url(settings))
    await run_simulator(
        nc.jetstream(),
        seed=7860,
        history_days=60,
        stop=stop,
        now=lambda: datetime.now(UTC),
    )
    await nc.drain()
