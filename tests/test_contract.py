"""The event contract's data agrees with itself: models, examples, JSON Schema, AsyncAPI, ingest."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.ingestion.common import DeadLetter, MessageMeta
from core.ingestion.processor import EventRow, process
from schemas import export
from schemas.asyncapi import DEAD_LETTER_CHANNEL, DEAD_LETTER_REASONS, asyncapi_document
from schemas.subjects import MAX_EVENT_BYTES, event_subject
from schemas.v1.events import EVENT_TYPES, parse_event
from schemas.v1.labels import EVENT_LABELS

pytestmark = pytest.mark.pure

V1 = Path(export.__file__).parent / "v1"
EXAMPLES = sorted((V1 / "examples").glob("*.json"))
INVALID = sorted((V1 / "examples" / "invalid").glob("*.json"))
PUBLISHED_AT = datetime(2025, 3, 10, 1, 16, tzinfo=UTC)
FALLBACK_SUBJECT = event_subject("STNMT", "dossier.received")


def _subject_for(raw: bytes) -> str:
    """motcua.events.<agency>.<type> from the payload, so only the payload itself is at fault."""
    try:
        data = json.loads(raw)
    except ValueError:
        return FALLBACK_SUBJECT
    if isinstance(data, dict):
        agency, event_type = data.get("agency_code"), data.get("type")
        if isinstance(agency, str) and isinstance(event_type, str):
            return event_subject(agency, event_type)
    return FALLBACK_SUBJECT


def _meta(subject: str) -> MessageMeta:
    return MessageMeta(subject=subject, stream_seq=1, published_at=PUBLISHED_AT)


def _invalid_cases() -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in INVALID]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_valid_and_named_for_its_type(path: Path) -> None:
    # Catches an example drifting from the models (a renamed or newly required field), or filed
    # under the wrong name, which would make the examples useless as fixtures and documentation.
    event = parse_event(path.read_bytes())
    assert path.name == f"{event.type}.json"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_stored_by_ingest(path: Path) -> None:
    # Catches a contract/processor split: an example that validates but that ingest would refuse.
    raw = path.read_bytes()
    result = process(raw, _meta(_subject_for(raw)))
    assert isinstance(result, EventRow), getattr(result, "detail", "")


def test_every_event_type_has_an_example_and_a_label() -> None:
    # Catches a new event type added to the contract without an example payload or a label.
    assert {p.stem for p in EXAMPLES} == set(EVENT_TYPES)
    assert set(EVENT_LABELS) == set(EVENT_TYPES)


@pytest.mark.parametrize("path", _invalid_cases())
def test_invalid_example_is_dead_lettered_with_its_reason(path: Path) -> None:
    # Catches the ingest accepting something the contract forbids, or dead-lettering it under a
    # reason other than the one integrators are told to expect.
    raw = path.read_bytes()
    expected = path.with_suffix(".reason").read_text(encoding="utf-8").strip()
    result = process(raw, _meta(_subject_for(raw)))
    assert isinstance(result, DeadLetter)
    assert result.reason == expected, result.detail
    assert result.raw == raw


def test_every_invalid_example_names_a_documented_reason() -> None:
    # Catches an invalid example without its .reason file, or one naming a reason that the
    # AsyncAPI document (Motcua-Reason header) does not list.
    assert INVALID
    for path in INVALID:
        reason_file = path.with_suffix(".reason")
        assert reason_file.is_file(), f"{path.name} has no .reason"
        assert reason_file.read_text(encoding="utf-8").strip() in DEAD_LETTER_REASONS


def test_naive_occurred_at_is_refused() -> None:
    # Catches the Timestamp type being loosened: a time without offset is ambiguous between the
    # province's systems and would shift every deadline computation by hours.
    payload = json.loads((V1 / "examples" / "dossier.received.json").read_text(encoding="utf-8"))
    payload["occurred_at"] = "2025-03-10T08:15:23"
    with pytest.raises(ValidationError, match="timezone"):
        parse_event(json.dumps(payload))


def test_committed_json_schema_is_fresh() -> None:
    # Catches a model edited without running `python -m schemas.export`: integrators would
    # validate against a published schema that no longer matches what ingest accepts.
    assert export.stale_files(V1 / "jsonschema") == []


def test_export_is_deterministic(tmp_path: Path) -> None:
    # Catches nondeterministic output (key order, missing newline), which would make the
    # freshness test flaky.
    first = {p.name: p.read_bytes() for p in export.export(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in export.export(tmp_path / "b")}
    assert first == second
    assert len(first) == len(EVENT_TYPES) + 1
    assert all(text.endswith(b"}\n") for text in first.values())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_against_exported_json_schema(path: Path) -> None:
    # Catches the exported JSON Schema refusing what the models accept, for integrators who
    # validate with JSON Schema tooling instead of pydantic.
    jsonschema = pytest.importorskip("jsonschema")
    payload = json.loads(path.read_text(encoding="utf-8"))
    for name in (f"{path.stem}.schema.json", f"{export.UNION_NAME}.schema.json"):
        schema = json.loads((V1 / "jsonschema" / name).read_text(encoding="utf-8"))
        jsonschema.validate(payload, schema, cls=jsonschema.Draft202012Validator)


def test_asyncapi_has_a_channel_per_event_type_and_the_dead_letter_channel() -> None:
    # Catches an event type missing from the published AsyncAPI document, a wrong address, or a
    # FastStream upgrade changing the document's version or layout.
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    channels = document["channels"]
    assert set(channels) == {*EVENT_TYPES, DEAD_LETTER_CHANNEL}
    for event_type, model in EVENT_TYPES.items():
        channel = channels[event_type]
        assert channel["address"] == event_subject("{agency_code}", event_type)
        assert "agency_code" in channel["parameters"]
        message_ref = channel["messages"]["Message"]["$ref"].rsplit("/", 1)[-1]
        payload_ref = document["components"]["messages"][message_ref]["payload"]["$ref"]
        assert payload_ref == f"#/components/schemas/{model.__name__}"
    assert channels[DEAD_LETTER_CHANNEL]["address"] == "motcua.dlq.{agency_code}"


def test_asyncapi_document_is_a_fresh_copy() -> None:
    # Catches the cached document being handed out by reference: one caller mutating it would
    # change what every later /asyncapi.json request serves.
    first = asyncapi_document()
    first["channels"].clear()
    assert asyncapi_document()["channels"]


@pytest.mark.parametrize(
    ("subject", "raw", "reason"),
    [
        (FALLBACK_SUBJECT, b" " * (MAX_EVENT_BYTES + 1), "oversized"),
        ("motcua.events.STNMT", b"{}", "bad_subject"),
        ("motcua.events.NHATRANG.dossier.received", None, "agency_mismatch"),
        ("motcua.events.STNMT.dossier.paid", None, "type_mismatch"),
    ],
)
def test_processor_reasons_are_documented(subject: str, raw: bytes | None, reason: str) -> None:
    # Catches the ingest emitting a dead-letter reason the AsyncAPI document does not list, for
    # the refusals that depend on the subject rather than on the payload alone.
    raw = raw if raw is not None else (V1 / "examples" / "dossier.received.json").read_bytes()
    result = process(raw, _meta(subject))
    assert isinstance(result, DeadLetter)
    assert result.reason == reason
    assert reason in DEAD_LETTER_REASONS


@pytest.mark.parametrize(
    ("tail", "key"),
    [
        (b', "agency_code": "SNV"}', "agency_code"),  # the last one would have won
        (b', "agency\\u005fcode": "STNMT"}', "agency_code"),  # the same key, escaped
        (b', "amount_vnd": 1500000}', "amount_vnd"),  # even with the same value
    ],
    ids=["other-value", "escaped", "same-value"],
)
def test_a_repeated_key_is_refused_naming_it(tail: bytes, key: str) -> None:
    # Catches (issue 14, finding 8): `"agency_code"` twice stored with the last value, where a
    # system that keeps the first reads another agency.
    raw = (V1 / "examples" / "dossier.paid.json").read_bytes().rstrip()[:-1] + tail
    result = process(raw, _meta(event_subject("STNMT", "dossier.paid")))
    assert isinstance(result, DeadLetter)
    assert result.reason == "invalid_json"
    assert repr(key) in result.detail and "twice" in result.detail


def test_values_must_have_their_json_type() -> None:
    # Catches (issue 14, finding 8): lax coercion accepting "5" for an integer, "true" for a
    # boolean, 5.5 for an integer, where the JSON Schema says integer and boolean.
    example = json.loads((V1 / "examples" / "dossier.received.json").read_bytes())
    for field, value in (("fee_required", "true"), ("fee_required", 1)):
        raw = json.dumps(example | {field: value}).encode()
        result = process(raw, _meta(_subject_for(raw)))
        assert isinstance(result, DeadLetter) and result.reason == "invalid_field", (field, value)
        assert field in result.detail
    paid = json.loads((V1 / "examples" / "dossier.paid.json").read_bytes())
    for value in ("5", 5.5):
        raw = json.dumps(paid | {"amount_vnd": value}).encode()
        result = process(raw, _meta(_subject_for(raw)))
        assert isinstance(result, DeadLetter) and result.reason == "invalid_field", value
    # what JSON spells as strings stays strings: times, ids, codes
    assert isinstance(
        process(json.dumps(paid).encode(), _meta(event_subject("STNMT", "dossier.paid"))),
        EventRow,
    )
