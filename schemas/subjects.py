"""The registry of NATS subjects and streams that carry the contract."""

from __future__ import annotations

from dataclasses import dataclass

EVENTS_STREAM = "MOTCUA_EVENTS"
EVENTS_PREFIX = "motcua.events"
EVENTS_SUBJECTS = f"{EVENTS_PREFIX}.>"

DLQ_STREAM = "MOTCUA_DLQ"
DLQ_PREFIX = "motcua.dlq"

# Plan alerts (core/plans/alerts.py): motcua.alerts.<agency_code>, one message per transition
# of an alert (firing, changed, resolved); Nats-Msg-Id = "<alert_id>#<seq>".
ALERTS_STREAM = "MOTCUA_ALERTS"
ALERTS_PREFIX = "motcua.alerts"
ALERTS_SUBJECTS = f"{ALERTS_PREFIX}.>"

# Reference data (schemas/v1/reference.py): kept forever (no max_age), so a fresh store can always
# be rebuilt from the stream.
REFERENCE_STREAM = "MOTCUA_REFERENCE"
REFERENCE_PREFIX = "motcua.reference"
REFERENCE_SUBJECTS = f"{REFERENCE_PREFIX}.>"
REFERENCE_KINDS = ("agency", "procedure")
# Reference dead letters are filed under this pseudo agency (motcua.dlq._reference): the catalogue
# is published by the province's office, not by the agency a record describes.
REFERENCE_DEAD_LETTER_AGENCY = "_reference"

# The largest event the ingest accepts. Real events are well under 2 KiB; anything this big is an
# integrator bug, refused before it is parsed.
MAX_EVENT_BYTES = 64 * 1024
# The largest message the NATS server takes (max_payload) and the streams store: the contract's
# 64 KiB and room for headers. A bigger publish is refused to the publisher at once (nats-py:
# MaxPayloadError), so nobody can make the stream, the dead letters and the API hold megabytes
# per message (issue 14: 150 x 1 MB dead letters made one listing 353 MB). A message between the
# two limits still reaches the ingest and is dead-lettered as `oversized`, with its bytes.
NATS_MAX_PAYLOAD = MAX_EVENT_BYTES + 8 * 1024
STREAM_MAX_MSG_BYTES = NATS_MAX_PAYLOAD


def event_subject(agency_code: str, event_type: str) -> str:
    """motcua.events.<agency_code>.<type>, e.g. motcua.events.STNMT.dossier.received."""
    return f"{EVENTS_PREFIX}.{agency_code}.{event_type}"


def alert_subject(agency_code: str) -> str:
    return f"{ALERTS_PREFIX}.{reference_token(agency_code) or '_province'}"


def dead_letter_subject(agency_code: str | None) -> str:
    return f"{DLQ_PREFIX}.{agency_code or '_unknown'}"


@dataclass(frozen=True, slots=True)
class SubjectParts:
    agency_code: str
    event_type: str


def parse_subject(subject: str) -> SubjectParts | None:
    """Split an event subject; None when it is not of the form motcua.events.<agency>.<type>."""
    prefix = EVENTS_PREFIX + "."
    if not subject.startswith(prefix):
        return None
    agency, _, event_type = subject[len(prefix) :].partition(".")
    if not agency or not event_type:
        return None
    return SubjectParts(agency_code=agency, event_type=event_type)


def reference_token(code: str) -> str:
    """A code as a subject token: procedure codes are dotted (1.004227 → 1_004227)."""
    return code.replace(".", "_")


def reference_subject(kind: str, code: str) -> str:
    """motcua.reference.<agency|procedure>.<code>, e.g. motcua.reference.procedure.1_004227."""
    return f"{REFERENCE_PREFIX}.{kind}.{reference_token(code)}"


@dataclass(frozen=True, slots=True)
class ReferenceSubjectParts:
    kind: str
    token: str


def parse_reference_subject(subject: str) -> ReferenceSubjectParts | None:
    """Split a reference subject; None unless motcua.reference.<agency|procedure>.<token>."""
    prefix = REFERENCE_PREFIX + "."
    if not subject.startswith(prefix):
        return None
    kind, _, token = subject[len(prefix) :].partition(".")
    if kind not in REFERENCE_KINDS or not token or "." in token:
        return None
    return ReferenceSubjectParts(kind=kind, token=token)
