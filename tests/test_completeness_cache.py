"""The API's completeness answers kept between reconciler steps (services/api/completeness.py)."""

from __future__ import annotations

from datetime import date

from core.figures.completeness import ScopeCompleteness
from services.api.completeness import CompletenessCache


def answer(n: int) -> ScopeCompleteness:
    return ScopeCompleteness(date(2026, 1, 1), date(2026, 1, n), (), {}, 0.99)


def test_a_live_answer_is_asked_again_once_stale_an_as_of_one_is_kept() -> None:
    # Catches: a live completeness kept past the reconciler's next judgment (a fixed gap shown
    # as open for good), or an as-of answer asked of the store at every request.
    cache = CompletenessCache(live_seconds=0.0)
    cache.put(("live",), answer(1))
    cache.put(("as-of",), answer(2))
    assert cache.get(("live",), live=True) is None
    assert cache.get(("as-of",), live=False) == answer(2)
    kept = CompletenessCache(live_seconds=60.0)
    kept.put(("live",), answer(3))
    assert kept.get(("live",), live=True) == answer(3)


def test_the_cache_holds_a_bounded_number_of_answers() -> None:
    # Catches: a cache that grows with every distinct question (crafted periods or scopes).
    cache = CompletenessCache(size=3)
    for n in range(1, 6):
        cache.put((n,), answer(n))
    assert [cache.get((n,), live=False) is not None for n in range(1, 6)] == [
        False,
        False,
        True,
        True,
        True,
    ]
