"""What the plan evaluator reads (core/plans/status.py): each unit's seasonal factors come from
its own agencies' previous year, read once per target, not once per unit; targets scoring one
766 index over the same scope and period share one count of it."""

from __future__ import annotations

import calendar as cal
import itertools
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client

from core.figures.refolder import catch_up
from core.figures.sql_params import calendar
from core.ingestion.common import MessageMeta
from core.ingestion.processor import EventRow, process
from core.ingestion.writer import EventWriter
from core.plans import load_plans
from core.plans.checks import AgencySpan, Reference
from core.plans.evaluator import Evaluator
from core.plans.model import DateRange
from tests.helpers import VN, received, resolved

_SEQ = itertools.count(1)

PLAN = """\
id: seasonal-{run}
version: 1
title: Kế hoạch thử mùa vụ
document: Thử nghiệm
issued_by: Bộ kiểm thử
valid: {{from: 2026-01-01, to: 2026-12-31}}
targets:
  - id: on-time
    text: Tỷ lệ hồ sơ đúng hạn từ 90% trở lên
    clause: X.1
    metric: on_time_rate
    scope:
      agencies: [{a}, {b}]
    comparator: ">="
    threshold: 0.9
    in_charge: Bộ kiểm thử
"""


def _store(client: Client, volumes: dict[str, dict[int, int]]) -> None:
    """Dossiers received and resolved on the 10th of each month of 2025, per agency."""
    rows = []
    for agency, per_month in volumes.items():
        for month, n in per_month.items():
            at = datetime(2025, month, 10, 9, tzinfo=VN)
            for _ in range(n):
                dossier = f"S-{uuid.uuid4().hex[:10]}"
                for event in (
                    received(agency, dossier, at, due=at + timedelta(days=5)),
                    resolved(agency, dossier, at + timedelta(hours=2)),
                ):
                    subject = f"motcua.events.{agency}.{event['type']}"
                    meta = MessageMeta(subject, next(_SEQ), datetime.now(UTC))
                    row = process(json.dumps(event).encode(), meta)
                    assert isinstance(row, EventRow), row
                    rows.append(row)
    assert EventWriter(client).write(rows, []).stored == len(rows)
    catch_up(client)


def _counting(clickhouse: Client, reads: list[str], *marks: str) -> Client:
    """The store's client, noting in `reads` every query whose SQL has one of `marks`."""

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(clickhouse, name)

        def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
            if any(mark in sql for mark in marks):
                reads.append(sql)
            return clickhouse.query(sql, *args, **kwargs)

    return cast(Client, Counting())


def _expected(per_month: dict[int, int]) -> dict[int, float]:
    """Reference: volume per working day in each month of 2025, over that year's mean."""
    wc = calendar()
    per_wd = {}
    for month in range(1, 13):
        days = [date(2025, month, d) for d in range(1, cal.monthrange(2025, month)[1] + 1)]
        per_wd[month] = per_month.get(month, 0) / sum(map(wc.is_working_day, days))
    mean = sum(per_wd.values()) / 12
    return {m: v / mean for m, v in per_wd.items()}


def test_each_units_seasonal_factors_come_from_its_own_previous_year_read_once(
    clickhouse: Client, tmp_path: Path
) -> None:
    # Catches: one unit's factors computed from the whole scope's volumes (or another unit's),
    # and a read of the previous year per unit (at 10M dossiers, ~300 reads made a cold plan
    # evaluation take 48 s).
    run = uuid.uuid4().hex[:6].upper()
    a, b = f"SA{run}", f"SB{run}"
    volumes = {
        a: {m: 30 if m == 12 else 3 for m in range(1, 13)},
        b: dict.fromkeys(range(1, 13), 5),
    }
    _store(clickhouse, volumes)
    (tmp_path / "plan.yaml").write_text(PLAN.format(run=run.lower(), a=a, b=b))
    spans = {c: (AgencySpan(None, "province", date(2000, 1, 1), None),) for c in (a, b)}
    reference = Reference(spans, frozenset({"dat_dai"}))
    plans = load_plans(tmp_path, reference=reference, packaged=False)
    plan = plans[f"seasonal-{run.lower()}@1"]
    target = plan.targets[0]

    reads: list[str] = []
    counting = _counting(clickhouse, reads, "dossier_days", "dossier_facts")
    evaluator = Evaluator(counting, {plan.key: plan}, folded_only=True)
    span = DateRange(start=date(2026, 1, 1), end=date(2026, 12, 31))
    got_a = evaluator._seasonal_factors(target, span, {a})
    got_b = evaluator._seasonal_factors(target, span, {b})
    got_scope = evaluator._seasonal_factors(target, span, None)
    assert len(reads) == 1
    both = {m: volumes[a][m] + volumes[b][m] for m in range(1, 13)}
    for got, want in ((got_a, _expected(volumes[a])), (got_b, _expected(volumes[b]))):
        assert got is not None and got == pytest.approx(want)
    assert got_scope == pytest.approx(_expected(both))
    assert (
        got_a is not None and got_b is not None and got_a[12] > 4 > got_b[12]
    )  # December is A's season, not B's


INDEX_PLAN = """\
id: index-{run}
version: 1
title: Kế hoạch thử chỉ số 766
document: Thử nghiệm
issued_by: Bộ kiểm thử
valid: {{from: 2025-01-01, to: 2025-12-31}}
targets:
  - id: on-time
    text: Chỉ tiêu 766 về giải quyết đúng hạn
    clause: X.1
    metric: index766:{first}
    scope:
      agencies: [{a}]
    comparator: ">="
    threshold: 0.5
    in_charge: Bộ kiểm thử
    applies_to: scope
  - id: digitised
    text: Chỉ tiêu 766 về số hóa
    clause: X.2
    metric: index766:{second}
    scope:
      agencies: [{a}]
    comparator: ">="
    threshold: 0.5
    in_charge: Bộ kiểm thử
    applies_to: scope
"""


def test_targets_on_one_index_scope_and_period_share_one_count_of_it(
    clickhouse: Client, tmp_path: Path
) -> None:
    # Catches: the index's counts (a year or more of dossiers each) read once per target that
    # scores one of its indicators (three shipped targets: ~2 s of a cold evaluation at 10M),
    # and a shared count that changes any status.
    from core.figures.index766_scores import INDICATORS

    run = uuid.uuid4().hex[:6].upper()
    a = f"SI{run}"
    _store(clickhouse, {a: dict.fromkeys(range(1, 13), 2)})
    first, second = "2.1", "3.3"  # on time, online: both from the dossiers
    assert {first, second} <= {i.id for i in INDICATORS}
    spans = {a: (AgencySpan(None, "province", date(2000, 1, 1), None),)}
    reference = Reference(spans, frozenset({"dat_dai"}))
    (tmp_path / "plan.yaml").write_text(
        INDEX_PLAN.format(run=run.lower(), a=a, first=first, second=second)
    )
    plan = load_plans(tmp_path, reference=reference, packaged=False)[f"index-{run.lower()}@1"]
    now = datetime(2026, 2, 1, tzinfo=VN)

    reads: list[str] = []
    # n_open_end: the index's read of the dossiers open at its instant
    together = Evaluator(_counting(clickhouse, reads, "n_open_end"), {plan.key: plan}).evaluate(now)
    assert len(reads) == 1 and len(together) == 2
    for status in together:  # each as if evaluated alone
        alone = plan.model_copy(update={"targets": (status.target,)})
        (expected,) = Evaluator(clickhouse, {alone.key: alone}).evaluate(now)
        assert status.evaluation == expected.evaluation and status.evaluation.denominator > 0
