"""The event contract as an AsyncAPI 3.0 document, built by FastStream from the v1 models.

The broker here is never connected: it exists only to declare one publisher per event type (what
integrators send) and the dead-letter channel (what the ingest sends back), so the document can be
served at /asyncapi.json without NATS. `faststream docs serve schemas.asyncapi:application
--factory` (needs faststream[cli]) shows FastStream's own rendering, without the additions
`asyncapi_document()` makes.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from schemas.subjects import DLQ_PREFIX, EVENTS_PREFIX
from schemas.v1.events import EVENT_TYPES, SCHEMA_VERSION
from schemas.v1.labels import describe

TITLE = "motcua-monitor events"
DOCUMENT_VERSION = f"{SCHEMA_VERSION}.0.0"
DEFAULT_SERVER = "nats://localhost:4222"
DEAD_LETTER_CHANNEL = "dead_letter"

# Every reason the ingest writes into Motcua-Reason (core/ingestion/processor.py, pipeline.py and
# reference.py); tests check the processors' reasons are all listed.
DEAD_LETTER_REASONS: tuple[str, ...] = (
    "oversized",
    "too_deep",  # JSON nested deeper than 200 levels: refused by the parser after ≤ 200 bytes
    "bad_subject",
    "invalid_json",
    "not_an_object",
    "unknown_type",
    "invalid_field",
    "agency_mismatch",
    "type_mismatch",
    "code_mismatch",  # reference data: the payload's code is not the subject's
    "conflicting_duplicate",
    "storage_refused",
)

_DESCRIPTION = (
    "Sự kiện hồ sơ thủ tục hành chính và phản ánh, kiến nghị mà các hệ thống Một cửa điện tử tỉnh "
    "Khánh Hòa gửi đến hệ thống giám sát. / Dossier and feedback events the one-stop systems of "
    "Khánh Hòa publish to motcua-monitor. One JSON object per message on "
    f"{EVENTS_PREFIX}.{{agency_code}}.{{type}}, with the Nats-Msg-Id header set to event_id. "
    "No personal data: unknown fields are refused. Types are strict (a number is never a "
    "string, a boolean never 0/1) and an object must not repeat a key. Refused messages are "
    "republished unchanged on "
    f"{DLQ_PREFIX}.{{agency_code}} with the reason in headers."
)
_AGENCY_PARAMETER = {
    "description": "Mã cơ quan / agency code, e.g. STNMT, NHATRANG, XA_VINHLUONG; must equal "
    "the payload's agency_code. On the dead-letter channel, _unknown when the subject had none."
}
_EVENT_HEADERS = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "format": "uuid",
            "description": "The payload's event_id: JetStream drops a republished duplicate.",
        }
    },
}
_DEAD_LETTER_HEADERS = {
    "type": "object",
    "properties": {
        "Motcua-Reason": {"type": "string", "enum": list(DEAD_LETTER_REASONS)},
        "Motcua-Detail": {"type": "string", "description": "Why, for people; at most 1000 chars."},
        "Motcua-Subject": {"type": "string", "description": "The subject it was published on."},
        "Motcua-Stream-Seq": {"type": "string", "description": "Its sequence in MOTCUA_EVENTS."},
        "Nats-Msg-Id": {"type": "string", "description": "dlq-<stream sequence>."},
    },
}


def build_broker(server: str = DEFAULT_SERVER) -> NatsBroker:
    """A broker with the contract's publishers declared; never connected."""
    broker = NatsBroker(
        server,
        description="Example address: integrators get their agency's NATS URL and credentials.",
    )
    for event_type, model in EVENT_TYPES.items():
        broker.publisher(
            f"{EVENTS_PREFIX}.{{agency_code}}.{event_type}",
            schema=model,
            title=event_type,
            description=describe(event_type),
        )
    broker.publisher(
        f"{DLQ_PREFIX}.{{agency_code}}",
        schema=bytes,
        title=DEAD_LETTER_CHANNEL,
        description="Hàng đợi thư lỗi / dead letters: each refused message's original bytes, "
        "unchanged, so the integrator can fix and republish it.",
    )
    return broker


def specification() -> AsyncAPI:
    """The document's metadata; brokers are added by FastStream (or by hand, below)."""
    return AsyncAPI(
        title=TITLE,
        version=DOCUMENT_VERSION,
        description=_DESCRIPTION,
        schema_version="3.0.0",
    )


def application(server: str = DEFAULT_SERVER) -> FastStream:
    """The contract as a FastStream app, for the CLI (`--factory`); it is never run."""
    return FastStream(build_broker(server), specification=specification())


@cache
def _document_json() -> str:
    document: dict[str, Any] = application().schema.to_specification().to_jsonable()
    _add_parameters_and_headers(document)
    # FastStream's publisher registry is unordered: sort for a stable document.
    return json.dumps(document, ensure_ascii=False, sort_keys=True)


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document as plain JSON data; built once, a fresh copy per call."""
    document: dict[str, Any] = json.loads(_document_json())
    return document


def _add_parameters_and_headers(document: dict[str, Any]) -> None:
    """What FastStream 0.7.8 leaves out: address parameters and the message headers we rely on.

    It also drops the correlation_id header FastStream claims: integrators publish with plain NATS
    clients, and nothing reads it.
    """
    for channel in document["channels"].values():
        if "{agency_code}" in channel.get("address", ""):
            channel["parameters"] = {"agency_code": dict(_AGENCY_PARAMETER)}
    for name, message in document["components"]["messages"].items():
        is_dead_letter = name.startswith(f"{DEAD_LETTER_CHANNEL}:")
        message["headers"] = _DEAD_LETTER_HEADERS if is_dead_letter else _EVENT_HEADERS
        message.pop("correlationId", None)
