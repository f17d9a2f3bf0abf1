"""Export contract v1 as JSON Schema: one file per event type plus one for the whole union, and
one per reference record type under reference/.

Run `python -m schemas.export` after any change to schemas/v1; `--check` only reports stale files
(exit 1), for CI. The output is deterministic (sorted keys, two-space indent, trailing newline), so
a test compares the committed files with a fresh render.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas.subjects import event_subject, reference_subject
from schemas.v1.events import EVENT_ADAPTER, EVENT_TYPES, SCHEMA_VERSION
from schemas.v1.labels import EVENT_LABELS, describe
from schemas.v1.reference import REFERENCE_LABELS, REFERENCE_TYPES

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Names, not addresses: the files are served by nobody, so $id does not pretend to be a URL.
ID_PREFIX = f"urn:motcua-monitor:schema:v{SCHEMA_VERSION}:"
DEFAULT_TARGET = Path(__file__).parent / f"v{SCHEMA_VERSION}" / "jsonschema"
UNION_NAME = "event"
REFERENCE_DIR = "reference"  # a subfolder, so the event files' set stays exactly one per type


def _with_header(schema: dict[str, Any], name: str, title: str, description: str) -> dict[str, Any]:
    return {
        **schema,
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": ID_PREFIX + name,
        "title": title,
        "description": description,
    }


def render_schemas() -> dict[str, str]:
    """File name → file text, for every event type and the union."""
    files: dict[str, str] = {}
    for event_type, model in EVENT_TYPES.items():
        vi, en = EVENT_LABELS[event_type]
        subject = event_subject("<agency_code>", event_type)
        schema = _with_header(
            model.model_json_schema(),
            event_type,
            f"{event_type}: {vi} / {en}",
            f"{describe(event_type)} Published on {subject}.",
        )
        files[f"{event_type}.schema.json"] = _dump(schema)
    union = _with_header(
        EVENT_ADAPTER.json_schema(),
        UNION_NAME,
        f"Event contract v{SCHEMA_VERSION}",
        "Any event of contract v1, chosen by `type`; published on "
        f"{event_subject('<agency_code>', '<type>')}. Carries no personal data.",
    )
    files[f"{UNION_NAME}.schema.json"] = _dump(union)
    return files


def render_reference_schemas() -> dict[str, str]:
    """File name → file text, for every reference record type (schemas/v1/reference.py)."""
    files: dict[str, str] = {}
    for record_type, model in REFERENCE_TYPES.items():
        vi, en = REFERENCE_LABELS[record_type]
        subject = reference_subject(record_type.split(".", 1)[1], "<code>")
        doc = " ".join((model.__doc__ or "").split())
        schema = _with_header(
            model.model_json_schema(),
            record_type,
            f"{record_type}: {vi} / {en}",
            f"{vi} / {en}. {doc} Published on {subject} (stream MOTCUA_REFERENCE).",
        )
        files[f"{record_type}.schema.json"] = _dump(schema)
    return files


def export(target_dir: Path) -> list[Path]:
    """Write every event schema file into target_dir (created if missing); returns the paths."""
    return _write(target_dir, render_schemas())


def export_reference(target_dir: Path) -> list[Path]:
    """Write the reference schema files into target_dir (normally <event target>/reference)."""
    return _write(target_dir, render_reference_schemas())


def _write(target_dir: Path, files: dict[str, str]) -> list[Path]:
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        path = target_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_files(target_dir: Path, expected: dict[str, str] | None = None) -> list[str]:
    """Names that differ from a fresh render, are missing, or should not be there."""
    expected = render_schemas() if expected is None else expected
    present = {p.name for p in target_dir.glob("*.json")}
    wrong = [
        name
        for name, text in expected.items()
        if not (target_dir / name).is_file()
        or (target_dir / name).read_text(encoding="utf-8") != text
    ]
    return sorted({*wrong, *(present - expected.keys())})


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.export", description=__doc__)
    parser.add_argument("--target", type=Path, default=DEFAULT_TARGET)
    parser.add_argument("--check", action="store_true", help="report stale files, write nothing")
    args = parser.parse_args(argv)
    reference_target = args.target / REFERENCE_DIR
    if args.check:
        stale = [args.target / n for n in stale_files(args.target)]
        stale += [
            reference_target / n for n in stale_files(reference_target, render_reference_schemas())
        ]
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        return 1 if stale else 0
    for path in [*export(args.target), *export_reference(reference_target)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
