"""Contract version 1."""

from schemas.v1.events import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    SCHEMA_VERSION,
    DossierEvent,
    Envelope,
    Event,
    FeedbackEvent,
    parse_event,
)

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "DossierEvent",
    "Envelope",
    "Event",
    "FeedbackEvent",
    "parse_event",
]
