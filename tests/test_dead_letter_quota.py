"""The daily quota of refused bytes kept per integrator (core/ingestion/quota.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.ingestion.common import DeadLetter, MessageMeta
from schemas.subjects import event_subject


@pytest.mark.pure
def test_past_its_daily_quota_an_integrator_s_letters_keep_their_reason_not_their_bytes() -> None:
    # Catches (issue 14, finding 5): one integrator's garbage filling the disk (every refused
    # byte kept, without limit), one integrator's flood counted against another, a quota that
    # never resets, and a letter dropped instead of kept without its bytes.
    from core.ingestion.quota import DeadLetterQuota

    now = [datetime(2026, 3, 2, 16, 0, tzinfo=UTC)]  # 23:00 in Vietnam
    quota = DeadLetterQuota(250, clock=lambda: now[0])
    quota.start({"A": 100})  # already kept today, read from the store at start

    def letter(agency: str, size: int) -> DeadLetter:
        meta = MessageMeta(subject=event_subject(agency, "dossier.received"), stream_seq=1,
                           published_at=now[0])  # fmt: skip
        return DeadLetter(meta, agency, "invalid_json", "bad", b"x" * size)

    kept = quota.keep([letter("A", 100), letter("A", 100), letter("B", 200)])
    assert [len(k.raw) for k in kept] == [100, 0, 200]
    assert "200" not in kept[0].detail and "not kept" in kept[1].detail
    assert kept[1].reason == "invalid_json" and quota.dropped == 1
    now[0] += timedelta(hours=1)  # midnight in Vietnam: a new day
    assert [len(k.raw) for k in quota.keep([letter("A", 200)])] == [200]
