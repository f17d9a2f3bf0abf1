"""Migrations applied to a store that already holds data, as an older release left it: every
figure is the same before, while the refolder catches up, and after."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures.periods import Period
from core.figures.reads import Read
from core.figures.refolder import catch_up
from core.reference.calendar import WorkingCalendar
from core.reference.calendar_store import sync_calendar
from core.storage.clickhouse import connect
from core.storage.migrate import available, migrate
from core.storage.pool import pooled
from tests.helpers import VN, feedback_event, filed
from tests.test_day_counts import answers
from tests.test_replay import store

NOW = datetime(2026, 12, 6, 10, tzinfo=UTC)
PERIODS = (
    Period.from_dates(date(2025, 1, 1), date(2025, 12, 31)),
    Period.from_dates(date(2026, 1, 1), date(2026, 12, 31)),
    Period.from_dates(date(2026, 3, 1), date(2026, 3, 31)),
    Period.from_dates(date(2025, 12, 1), date(2026, 2, 28)),
)


def fresh_store(clickhouse_url: str, up_to: int) -> Client:
    """A database of its own in the session's engine (one chDB engine per process), migrated
    up to `up_to`."""
    client = connect(clickhouse_url, database=f"m{uuid.uuid4().hex[:12]}")
    migrate(client, up_to=up_to)
    sync_calendar(client, WorkingCalendar.load())
    return client


def feedback_history(agency: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Feedback filed over fourteen months: answered in time, late, or not at all, some
    published; the second list answers and publishes some of them later, so their facts get a
    second version (the first one superseded, in a partition of its own)."""
    first, later = [], []
    for i in range(28):
        at = datetime(2025, 11, 1, 9, tzinfo=VN) + timedelta(days=15 * i, hours=i % 7)
        first.append(filed(agency, f"F{i}", at, due=at + timedelta(days=10)))
        answered = at + timedelta(days=(3, 12, 25)[i % 3])
        if i % 4 != 3:
            first.append(feedback_event("answered", agency, f"F{i}", answered))
        elif answered < NOW:
            later.append(feedback_event("answered", agency, f"F{i}", answered))
        if i % 5 == 0:
            later.append(feedback_event("published", agency, f"F{i}", answered + timedelta(1)))
    return first, later


def feedback_figures(client: Client, agency: str) -> dict[tuple[Any, ...], Any]:
    """Every figure, its daily series and the index's counts (test_day_counts.answers) over each
    period, live and as of an instant."""
    return {
        (period.start, as_of): answers(client, agency, NOW, as_of, period)
        for period in PERIODS
        for as_of in (None, datetime(2026, 3, 15, tzinfo=UTC))
    }


def test_feedback_facts_moved_to_yearly_partitions_keep_every_figure(
    clickhouse_url: str, agency: str
) -> None:
    client = fresh_store(clickhouse_url, up_to=27)
    # today's code reads the receipts per procedure from the day counts (0032): their anchor,
    # on this store that holds no dossier (so 0032's refill would add nothing later)
    for statement in next(m for m in available() if m.version == 32).statements():
        client.command(statement)
    # the figures asked side by side, as the API asks them (test_day_counts.answers)
    readers = pooled(lambda: connect(clickhouse_url, database=client.database), 3)
    try:
        first, later = feedback_history(agency)
        store(client, first)
        catch_up(client)
        store(client, later)
        catch_up(client)
        before = feedback_figures(readers, agency)
        # feedback figures with a population
        assert any(
            r[2]
            for f, _, _ in before.values()
            for m, rows in f.items()
            if m.startswith("feedback")
            for r in rows
        )

        assert 28 in migrate(client)
        # 0028 emptied the facts: the feedback is folded from its parts at question time meanwhile
        # (and the dossiers, of which the store holds none, are not behind)
        assert Read.of(client, None).behind == {"feedback"}
        assert client.command("SELECT count() FROM feedback_facts") == 0
        assert feedback_figures(readers, agency) == before

        catch_up(client)
        assert Read.of(client, None).behind == frozenset()
        assert feedback_figures(readers, agency) == before
        partitions = {
            r[0]
            for r in client.query(
                "SELECT partition FROM system.parts WHERE database = currentDatabase() "
                "AND table = 'feedback_facts' AND active"
            ).result_rows
        }
        # current versions by the year they were filed; superseded ones by minus the year they ended
        assert {"2025", "2026"} <= partitions <= {"2025", "2026", "-2025", "-2026"}
        assert partitions & {"-2025", "-2026"}
    finally:
        readers.close()
