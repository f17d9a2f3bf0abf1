"""Building events and waiting for the pipeline, shared by the tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from services.api.keys import KeyStore

VN = timezone(timedelta(hours=7))

# The admin API key of the test system (conftest `system`; MOTCUA_BOOTSTRAP_ADMIN_KEY for
# `motcua up` subprocesses): a bootstrap key needs at least 32 characters.
TEST_ADMIN_KEY = "mk_test_admin_0123456789abcdefghijklmnop"
TEST_ADMIN_HEADERS = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}


def admin_key_store(clickhouse: Client) -> KeyStore:
    """The key store for an API a test builds itself (create_app), holding TEST_ADMIN_KEY."""
    store = KeyStore(clickhouse)
    store.ensure_bootstrap(TEST_ADMIN_KEY)
    return store


def dossier_event(
    kind: str, agency: str, dossier_id: str, at: datetime, **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": f"dossier.{kind}",
        "schema_version": 1,
        "occurred_at": at.isoformat(),
        "agency_code": agency,
        "source": "test-suite",
        "dossier_id": dossier_id,
        **fields,
    }


def received(
    agency: str,
    dossier_id: str,
    at: datetime,
    *,
    due: datetime,
    channel: str = "online",
    domain: str = "dat_dai",
    level: str = "province",
    fee: bool = False,
) -> dict[str, Any]:
    return dossier_event(
        "received",
        agency,
        dossier_id,
        at,
        procedure_code="1.004227",
        domain_code=domain,
        level=level,
        channel=channel,
        received_at=at.isoformat(),
        due_at=due.isoformat(),
        fee_required=fee,
        paper_result_required=False,
    )


def resolved(agency: str, dossier_id: str, at: datetime) -> dict[str, Any]:
    return dossier_event("resolved", agency, dossier_id, at, outcome="approved", e_result=True)


async def publish(
    nc: NatsClient,
    event: dict[str, Any] | bytes,
    *,
    subject: str | None = None,
    msg_id: str | None | bool = True,
) -> None:
    """Publish as a plain nats-py integrator would, waiting for the stream's ack."""
    if isinstance(event, dict):
        data = json.dumps(event).encode()
        subject = subject or f"motcua.events.{event['agency_code']}.{event['type']}"
        if msg_id is True:
            msg_id = event["event_id"]
    else:
        data = event
        assert subject is not None
        msg_id = None if msg_id is True else msg_id
    headers = {"Nats-Msg-Id": msg_id} if isinstance(msg_id, str) else None
    await nc.jetstream().publish(subject, data, headers=headers)


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 20.0
) -> None:
    """Poll until check() holds; fail with the last state otherwise (no fixed sleeps)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def feedback_event(
    kind: str, agency: str, feedback_id: str, at: datetime, **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": f"feedback.{kind}",
        "schema_version": 1,
        "occurred_at": at.isoformat(),
        "agency_code": agency,
        "source": "test-suite",
        "feedback_id": feedback_id,
        **fields,
    }


def filed(
    agency: str, feedback_id: str, at: datetime, *, due: datetime, topic: str = "procedure"
) -> dict[str, Any]:
    return feedback_event(
        "filed",
        agency,
        feedback_id,
        at,
        filed_at=at.isoformat(),
        topic=topic,
        due_at=due.isoformat(),
    )


# A headless chromium that does nothing behind a test's back (no updates, sync or prefetch), for
# every browser test: tests/test_page.py, tests/test_docs_offline.py, tests/cdp.py.
HEADLESS_CHROMIUM = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
