"""Hostile input against the pure decoder: any bytes become a row or a dead letter, never a crash.

Property tests (hypothesis) over arbitrary bytes, arbitrary JSON and mutations of the contract's
examples; plus the two cheap refusals (oversized, too deep). Bounded to a few hundred examples per
property so the file runs in seconds; their cost is measured in bench/hostile_bench.py, not here.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ingestion.common import DEAD_LETTER_COLUMNS, DeadLetter, MessageMeta
from core.ingestion.processor import EVENT_COLUMNS, EventRow, process
from schemas import export
from schemas.asyncapi import DEAD_LETTER_REASONS
from schemas.subjects import MAX_EVENT_BYTES, event_subject
from schemas.v1.events import EVENT_TYPES

pytestmark = pytest.mark.pure

EXAMPLES = {
    p.stem: json.loads(p.read_bytes())
    for p in sorted((Path(export.__file__).parent / "v1" / "examples").glob("*.json"))
}
PUBLISHED_AT = datetime(2026, 3, 2, 1, tzinfo=UTC)
FALLBACK_SUBJECT = event_subject(
    EXAMPLES["dossier.received"]["agency_code"], EXAMPLES["dossier.received"]["type"]
)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

subjects = st.one_of(
    st.sampled_from([event_subject(e["agency_code"], e["type"]) for e in EXAMPLES.values()]),
    st.text(max_size=60).map(lambda t: f"motcua.events.{t}"),
    st.text(max_size=40),
)


def _meta(subject: str) -> MessageMeta:
    return MessageMeta(subject=subject, stream_seq=7, published_at=PUBLISHED_AT)


def check_outcome(raw: bytes, subject: str) -> EventRow | DeadLetter:
    """The property every input must have; returns the outcome for further checks."""
    result = process(raw, _meta(subject))  # must not raise: that is the first property
    if isinstance(result, DeadLetter):
        assert result.reason in DEAD_LETTER_REASONS, result.reason
        assert result.detail
        assert result.raw == raw  # verbatim, whatever the encoding
        values = result.values()
        assert len(values) == len(DEAD_LETTER_COLUMNS)
        assert values[DEAD_LETTER_COLUMNS.index("raw")] == raw
    else:
        assert isinstance(result, EventRow)
        assert len(result.values) == len(EVENT_COLUMNS)
        # What is stored is the canonical dump of the model, so no field outside the contract
        # (a citizen's name, say) can ride along in `payload`.
        stored = json.loads(result.values[EVENT_COLUMNS.index("payload")])
        assert set(stored) <= set(type(result.event).model_fields)
        assert result.values[EVENT_COLUMNS.index("subject")] == subject
    return result


@FUZZ
@given(raw=st.binary(max_size=2048), subject=subjects)
def test_arbitrary_bytes_never_crash(raw: bytes, subject: str) -> None:
    # Catches: an exception escaping process() (the consumer would stop, the message would be
    # redelivered forever) or a dead letter whose bytes are not what was sent.
    check_outcome(raw, subject)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=5)
    ),
    max_leaves=30,
)


@FUZZ
@given(value=json_values, subject=subjects)
def test_arbitrary_json_never_crashes(value: Any, subject: str) -> None:
    check_outcome(json.dumps(value).encode(), subject)


# Values that have broken decoders before: extremes of every JSON type, timestamps at the edges
# of what Python and ClickHouse can hold, odd unicode.
nasty_values = st.one_of(
    json_values,
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",  # overflows when moved to UTC
            "9999-12-31T23:59:59-01:00",
            "1899-12-31T23:59:59+00:00",  # below DateTime64(3)
            "2300-01-01T00:00:00+00:00",  # above DateTime64(3)
            "2026-03-02T09:00:00",  # naive
            "2026-02-30T09:00:00+07:00",
            "\ud800",
            "\x00",
            "",
            "a" * 10_000,
            10**30,
            -1,
            1e308,
            [],
            {},
        ]
    ),
)


@st.composite
def mutated_examples(draw: st.DrawFn) -> tuple[bytes, str]:
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    event = dict(EXAMPLES[name])
    subject = event_subject(event["agency_code"], event["type"])
    fields = sorted(set(event) | set(EVENT_TYPES[event["type"]].model_fields))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "drop", "add"]))
        if action == "set":
            event[draw(st.sampled_from(fields))] = draw(nasty_values)
        elif action == "drop" and event:
            event.pop(draw(st.sampled_from(sorted(event))))
        else:
            event[draw(st.text(min_size=1, max_size=20))] = draw(nasty_values)
    raw = json.dumps(event, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # byte-level damage too: truncate, or flip one byte
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] if draw(st.booleans()) else raw[:cut] + b"\xff" + raw[cut + 1 :]
    return raw, draw(st.one_of(st.just(subject), subjects))


@FUZZ
@given(case=mutated_examples())
def test_mutated_examples_never_crash(case: tuple[bytes, str]) -> None:
    raw, subject = case
    check_outcome(raw, subject)


offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
field_values = st.one_of(
    st.datetimes(timezones=offsets).map(lambda d: d.isoformat()),  # year 1 to 9999, any offset
    # ... and the first and last days Python can represent, which uniform draws rarely reach
    st.datetimes(max_value=datetime(1, 1, 2), timezones=offsets).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=offsets).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # naive
    st.integers(),
    st.booleans(),
    st.text(max_size=80),
    st.none(),
)


@st.composite
def one_field_changed(draw: st.DrawFn) -> tuple[bytes, str]:
    """A valid example with one contract field given another value of some JSON kind: the
    closest hostile inputs to real traffic, where most of the event is still right."""
    event = dict(draw(st.sampled_from(list(EXAMPLES.values()))))
    subject = event_subject(event["agency_code"], event["type"])
    name = draw(st.sampled_from(sorted(EVENT_TYPES[event["type"]].model_fields)))
    event[name] = draw(field_values)
    return json.dumps(event).encode(), subject


@FUZZ
@given(case=one_field_changed())
def test_one_field_changed_never_crashes(case: tuple[bytes, str]) -> None:
    raw, subject = case
    check_outcome(raw, subject)


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2300-01-01T00:00:00Z"]
)
def test_unstorable_times_are_refused_not_raised(value: str) -> None:
    # Catches: found while fuzzing (test_one_field_changed_never_crashes, without this fix,
    # fails in about one run of three at 300 examples; this pins it). A year-1 time with a
    # positive offset validated as an aware datetime, then moving it to UTC raised OverflowError
    # inside process(): the consumer crashed and the message came back forever. A year-2300 time
    # would have reached ClickHouse, whose DateTime64(3) cannot hold it.
    event = EXAMPLES["dossier.received"] | {"occurred_at": value}
    result = check_outcome(json.dumps(event).encode(), FALLBACK_SUBJECT)
    assert isinstance(result, DeadLetter)
    assert result.reason == "invalid_field"
    assert "occurred_at" in result.detail


def test_every_example_still_passes() -> None:
    # Catches: the fuzz properties passing vacuously because everything is refused.
    for event in EXAMPLES.values():
        raw = json.dumps(event | {"event_id": str(uuid.uuid4())}).encode()
        assert isinstance(
            process(raw, _meta(event_subject(event["agency_code"], event["type"]))), EventRow
        )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "oversized"),  # the brief's 100,000 levels: 200 KB
        (b"[" * 30_000 + b"]" * 30_000, "too_deep"),  # under the size limit, still absurd
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "too_deep"),
        (b"[" * 40_000, "too_deep"),  # never closed: refused before the end is read
        (b'{"x": ' + b"[" * 250 + b"]" * 250 + b"}", "too_deep"),  # deep inside an object
        (b" " * (MAX_EVENT_BYTES + 1), "oversized"),
    ],
    ids=["100k-arrays", "30k-arrays", "10k-objects", "unclosed", "nested-field", "spaces"],
)
def test_deep_and_large_payloads_get_their_own_reason(raw: bytes, reason: str) -> None:
    # Catches: a RecursionError or a long parse on hostile nesting, or a refusal an integrator
    # cannot tell from a typo (invalid_json). Cheapness is measured in bench/hostile_bench.py.
    result = check_outcome(raw, FALLBACK_SUBJECT)
    assert isinstance(result, DeadLetter)
    assert result.reason == reason


def test_a_little_nesting_is_not_too_deep() -> None:
    # Catches: a depth limit so low it refuses ordinary JSON as too_deep.
    result = check_outcome(b"[" * 50 + b"]" * 50, FALLBACK_SUBJECT)
    assert isinstance(result, DeadLetter)
    assert result.reason == "not_an_object"


def test_unknown_fields_are_refused_and_never_stored() -> None:
    # Catches: extra="forbid" dropped from a model, so a citizen's name or ID number pasted into
    # an extra field would be stored (the contract carries no personal data).
    event = EXAMPLES["feedback.filed"] | {"citizen_phone": "0905 000 000"}
    result = check_outcome(
        json.dumps(event).encode(), event_subject(event["agency_code"], event["type"])
    )
    assert isinstance(result, DeadLetter)
    assert result.reason == "invalid_field"
    assert "citizen_phone" in result.detail


def test_source_is_kept_for_an_invalid_event() -> None:
    # Catches: dead letters of readable but invalid payloads filed under no publishing system.
    event = EXAMPLES["dossier.received"] | {"channel": "fax"}
    result = check_outcome(json.dumps(event).encode(), FALLBACK_SUBJECT)
    assert isinstance(result, DeadLetter)
    assert result.source == event["source"]
