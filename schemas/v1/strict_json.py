"""One rule of the contract JSON itself leaves open: an object must not repeat a key.

RFC 8259 §4 says names "SHOULD be unique" and leaves a repeat to the parser; pydantic's parser
keeps the last one, so `{"agency_code": "STNMT", …, "agency_code": "SNV"}` was stored as SNV
while a system that keeps the first would read STNMT (issue 14, finding 8). The contract refuses
such a payload (`invalid_json`, naming the key).

Finding a repeat costs a second parse (~10 µs an event, against ~16 µs for the whole check of a
valid one), so it is done only where a repeat is possible: `may_repeat` rules it out for nearly
every valid event with one scan of its bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any

# A key's closing quote with white space before its colon.
_SPACED_KEY_END = re.compile(rb'"\s+:')


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Repeated(key)
        seen.add(key)


def may_repeat(raw: bytes, keys: int) -> bool:
    """Whether `raw`, a flat JSON object the models accepted with `keys` distinct keys, may
    hold one of them twice. Every key, however escaped, ends with a quote and its colon; with
    no white space between them, `":` occurs at least once per key, and more only inside
    strings. So as many `":` as distinct keys, and no spaced colon, means no key twice."""
    return raw.count(b'":') != keys or _SPACED_KEY_END.search(raw) is not None


def repeated_key(raw: bytes) -> str | None:
    """The first key an object of `raw` repeats, or None (also when `raw` is no JSON: the
    parser says what is wrong with it)."""
    try:
        json.loads(raw, object_pairs_hook=_unique)
    except _Repeated as repeat:
        return repeat.key
    except (ValueError, RecursionError):
        return None
    return None
