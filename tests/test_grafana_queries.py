"""Every Grafana query (panels, template variables, alert rules) runs against the real ClickHouse
engine (chDB), expanded as Grafana and the ClickHouse plugin would expand it, on a seeded data set,
and returns the columns and ClickHouse types its panel declares.

Seeded directly into the tables the boards read (metric_snapshots, target_status, alerts, events,
dead_letters, agencies), under unique agency codes and a unique plan key, so the session's shared
store does not leak into the assertions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from core.figures.definitions import METRICS
from core.figures.reconciliation import RECONCILIATION_COLUMNS
from core.figures.refolder import catch_up
from core.zone import VN
from tools.grafana.alerting import ALERT_RULES, TARGET_AT_RISK
from tools.grafana.api_panels import completeness_threshold
from tools.grafana.board_pipeline import pipeline
from tools.grafana.dashboards import all_dashboards
from tools.grafana.macros import (
    ALL,
    MacroError,
    TimeRange,
    VariableValue,
    expand,
)
from tools.grafana.model import Query
from tools.grafana.panels import targets_table
from tools.grafana.plans import land_late_targets

LEVELS = ("province", "district", "commune")
# (numerator, denominator) per agency; A2 is a district, so the level filter can be checked.
DEFAULT_FIGURES = {"A1": (8, 10), "A2": (3, 10)}
OVERRIDES = {
    "feedback_open": {"A1": (2, 10), "A2": (1, 10)},
    "feedback_open_overdue": {"A1": (1, 10), "A2": (0, 10)},
}
TARGET_METRICS = (
    "online_share",
    "digitized_share",
    "feedback_answered_on_time",
    "apology_compliance",
    "index766:1.1",
)
LAG_SECONDS = 2.5


@dataclass
class Seed:
    a1: str
    a2: str
    plan: str
    now: datetime

    def figures(self, metric: str, who: str) -> tuple[int, int]:
        return OVERRIDES.get(metric, DEFAULT_FIGURES)[who]

    def code(self, who: str) -> str:
        return self.a1 if who == "A1" else self.a2


def _insert(client: Client, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    client.insert(table, [[r[c] for c in columns] for r in rows], column_names=columns)


@pytest.fixture(scope="module")
def seed(clickhouse: Client) -> Iterator[Seed]:
    tag = uuid.uuid4().hex[:8].upper()
    s = Seed(f"TG{tag}A", f"TG{tag}B", f"grafana-test-{tag}@1", datetime.now(UTC))
    _agencies(clickhouse, s)
    _procedures(clickhouse, s)
    _snapshots(clickhouse, s)
    _targets(clickhouse, s)
    _events(clickhouse, s)
    _reconciliation(clickhouse, s)
    yield s


def _agencies(client: Client, s: Seed) -> None:
    rows = []
    # A2 lies under A1 in the tree: the board's agency means its subtree, as in the API.
    for code, level, name, parent in (
        (s.a1, "province", "Sở Thử nghiệm", None),
        (s.a2, "district", "Huyện Thử", s.a1),
    ):
        rows.append(
            {
                "agency_code": code,
                "valid_from": date(2020, 1, 1),
                "valid_to": None,
                "name": name,
                "level": level,
                "parent_code": parent,
                "event_id": uuid.uuid4(),
                "occurred_at": s.now,
                "source": "test-suite",
                "payload": "{}",
                "subject": f"motcua.reference.agency.{code}",
                "stream_seq": 0,
                "published_at": s.now,
            }
        )
    _insert(client, "agencies", rows)


def _procedures(client: Client, s: Seed) -> None:
    # The domain variable lists the catalogue's domains. A code of the seed's own: the store is
    # shared, and a catalogue figure of another test must not see this procedure.
    _insert(
        client,
        "procedures",
        [
            {
                "procedure_code": f"{s.a1}.P",
                "valid_from": date(2020, 1, 1),
                "name": "Đăng ký đất đai",
                "domain_code": "dat_dai",
                "event_id": uuid.uuid4(),
                "occurred_at": s.now,
                "source": "test-suite",
                "payload": "{}",
            }
        ],
    )


def _snapshots(client: Client, s: Seed) -> None:
    today = s.now.astimezone(VN).date()
    rows = []
    for metric in METRICS:
        for who in ("A1", "A2"):
            num, den = s.figures(metric, who)
            for period, start in (
                ("year", today.replace(month=1, day=1)),
                ("month", today.replace(day=1)),
            ):
                # An older figure that argMax must not pick.
                for at, n, d in (
                    (s.now - timedelta(hours=2), 1, 1),
                    (s.now - timedelta(hours=1), num, den),
                ):
                    rows.append(
                        {
                            "computed_at": at,
                            "period": period,
                            "period_start": start,
                            "metric": metric,
                            "agency_code": s.code(who),
                            "numerator": n,
                            "denominator": d,
                            "data_watermark": at,
                        }
                    )
    _insert(client, "metric_snapshots", rows)


def _targets(client: Client, s: Seed) -> None:
    today = s.now.astimezone(VN).date()
    year = (today.replace(month=1, day=1), today.replace(month=12, day=31))
    targets = [(land_late_targets()[0], "late_rate")] + [(f"T-{m}", m) for m in TARGET_METRICS]
    rows, alerts = [], []
    for target_id, metric in targets:
        for agency, status in (("", "on_track"), (s.a1, "at_risk"), (s.a2, "met")):
            for at, st in (
                (s.now - timedelta(hours=3), "met"),
                (s.now - timedelta(minutes=30), status),
            ):
                rows.append(
                    {
                        "evaluated_at": at,
                        "plan": s.plan,
                        "target_id": target_id,
                        "agency_code": agency,
                        "period_start": year[0],
                        "period_end": year[1],
                        "metric": metric,
                        "comparator": "<" if metric == "late_rate" else ">=",
                        "threshold": 0.02 if metric == "late_rate" else 0.3,
                        "numerator": 3,
                        "denominator": 100,
                        "pending": 0,
                        "value": 0.03,
                        "status": st,
                        "budget": 5,
                        "burn_rates": {"5wd": 1.4, "20wd": 0.9},
                        "data_watermark": at,
                    }
                )
        alerts.append(
            {
                "alert_id": f"{s.plan}|{target_id}|{s.a1}",
                "seq": 1,
                "state": "firing",
                "at": s.now - timedelta(minutes=30),
                "kind": "status",
                "severity": "warning",
                "plan": s.plan,
                "target_id": target_id,
                "agency_code": s.a1,
                "period_start": year[0],
                "status": "at_risk",
                "previous_status": "met",
                "summary": "Có nguy cơ không đạt",
                "evidence": "{}",
            }
        )
    _insert(client, "target_status", rows)
    _insert(client, "alerts", alerts)


def _events(client: Client, s: Seed) -> None:
    rows, dead = [], []
    for i in range(6):
        who = s.a1 if i % 2 else s.a2
        at = s.now - timedelta(days=i, minutes=5)
        published = at + timedelta(seconds=1)
        rows.append(
            {
                "event_id": uuid.uuid4(),
                "type": "dossier.received",
                "schema_version": 1,
                "occurred_at": at,
                "agency_code": who,
                "source": "grafana-test-integrator",
                "entity": "dossier",
                "entity_id": f"D-{who}-{i}",
                "procedure_code": "1.004227",
                "domain_code": "dat_dai",
                "level": "province",
                "channel": "online" if i % 3 else "direct",
                "received_at": at,
                "due_at": at + timedelta(days=10),
                "payload": json.dumps({"i": i}),
                "subject": f"motcua.events.{who}.dossier.received",
                "stream_seq": i + 1,
                "published_at": published,
                "ingested_at": published + timedelta(seconds=LAG_SECONDS if i == 0 else 0.5),
            }
        )
        dead.append(
            {
                "dead_lettered_at": at,
                "subject": f"motcua.events.{who}.dossier.received",
                "stream_seq": 1000 + i,
                "published_at": at,
                "agency_code": who,
                "source": "" if i == 0 else "grafana-test-integrator",
                "event_id": None,
                "reason": "invalid_field",
                "detail": "due_at: missing",
                "raw": "{}",
            }
        )
    _insert(client, "events", rows)
    _insert(client, "dead_letters", dead)
    # The intake panel reads the day counts, which the metrics service's refolder keeps.
    catch_up(client)


# (days before today, agency, reported, held, missing, extra): the latest judgment of each day.
# A1 sends from 4 days ago and skips 2 days ago; A2 sends once, whole.
JUDGED = (
    (4, "A1", 10, 9, 1, 0),
    (3, "A1", 5, 5, 0, 2),
    (1, "A1", 3, 3, 0, 0),
    (3, "A2", 4, 4, 0, 0),
)


def _reconciliation(client: Client, s: Seed) -> None:
    today = s.now.astimezone(VN).date()
    rows = []
    for ago, who, reported, held, missing, extra in JUDGED:
        # an earlier judgment of the same day (5 missing then) that the latest supersedes
        for at, h, m in (
            (s.now - timedelta(hours=3), held - 5, missing + 5),
            (s.now, held, missing),
        ):
            values = {
                "agency_code": s.code(who),
                "day": today - timedelta(days=ago),
                "evaluated_at": at,
                "data_until": at,
                "source": "grafana-test-integrator",
                "manifest_at": at,
                "has_ids": 0,
                "reported_received": reported,
                "stored_received": max(h, 0) + extra,
                "held_received": max(h, 0),
                "missing": m,
                "extra": extra,
                "reported_finished": 0,
                "stored_finished": 0,
                "reported_open": 0,
                "stored_open": None,
                "reported_feedback_filed": 0,
                "stored_feedback_filed": 0,
                "reported_feedback_answered": 0,
                "stored_feedback_answered": 0,
                "status": "missing" if m else "matched",
            }
            rows.append({c: values[c] for c in RECONCILIATION_COLUMNS})
    _insert(client, "reconciliation_days", rows)


def _variables(
    s: Seed, *, agency: str | None = None, scope: str = "true", level: tuple[str, ...] = (ALL,)
) -> dict[str, VariableValue]:
    return {
        "agency": VariableValue((agency or s.a1,), (s.a1, s.a2), multi=False),
        "scope": VariableValue((scope,), ("true", "false"), multi=False),
        "level": VariableValue(level, LEVELS),
        "domain": VariableValue((ALL,), ("dat_dai", "ho_tich")),
        "plan": VariableValue((s.plan,), (s.plan,), multi=False),
    }


def _range(s: Seed) -> TimeRange:
    return TimeRange(s.now - timedelta(days=30), s.now + timedelta(minutes=1), interval_s=3600)


def _run(
    client: Client, query: Query, variables: dict[str, VariableValue], time: TimeRange
) -> list[tuple[Any, ...]]:
    sql = expand(query.sql, variables, time)
    rows = client.query(sql).result_rows
    described = client.query(f"DESCRIBE TABLE ({sql})").result_rows
    assert tuple((r[0], r[1]) for r in described) == query.columns
    return [tuple(r) for r in rows]


ALL_QUERIES = [(name, q) for b in all_dashboards() for name, q in b.queries()] + [
    (f"alert/{r.uid}", Query(r.sql, r.columns)) for r in ALERT_RULES
]


@pytest.mark.parametrize(("name", "query"), ALL_QUERIES, ids=[n for n, _ in ALL_QUERIES])
def test_every_query_runs_and_returns_its_columns(
    clickhouse: Client, seed: Seed, name: str, query: Query
) -> None:
    # Catches: SQL the engine refuses once expanded, a renamed table or column, a panel whose
    # columns or types changed (its field config and transformations would silently break),
    # and a panel that stays empty on data that should fill it.
    rows = _run(clickhouse, query, _variables(seed), _range(seed))
    assert rows, f"{name}: no rows on the seeded data"
    # The agency alone, and a leaf agency: the SQL must still run and keep its types.
    _run(clickhouse, query, _variables(seed, scope="false"), _range(seed))
    _run(clickhouse, query, _variables(seed, agency=seed.a2), _range(seed))


def test_agency_means_its_subtree_or_the_agency_alone(clickhouse: Client, seed: Seed) -> None:
    # Catches: the board's agency filter drifting from the API's scope (core/figures/scope):
    # an agency without what lies under it, the switch to the agency alone ignored, or a tree
    # read at another date than the range's end (A2 joined A1's tree in 2020).
    query = targets_table("t").query
    assert isinstance(query, Query)

    def agencies(**kw: Any) -> set[str]:
        rows = _run(clickhouse, query, _variables(seed, **kw), _range(seed))
        return {r[1] for r in rows} - {""}

    assert agencies() == {seed.a1, seed.a2}
    assert agencies(scope="false") == {seed.a1}
    assert agencies(agency=seed.a2) == {seed.a2}
    before = TimeRange(datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 12, 31, tzinfo=UTC))
    rows = _run(clickhouse, query, _variables(seed), before)
    assert {r[1] for r in rows} - {""} <= {seed.a1}  # no tree yet: the agency's own rows only


def test_pipeline_lag_and_target_alert(clickhouse: Client, seed: Seed) -> None:
    # Catches: lag computed the wrong way round (published − ingested) or in the wrong unit, and
    # the plan alert missing an at_risk agency.
    lag = next(p for p in pipeline().panels if p.title.startswith("Độ trễ nhập")).query
    assert lag is not None
    rows = _run(clickhouse, lag, _variables(seed), _range(seed))
    assert max(r[3] for r in rows) == pytest.approx(LAG_SECONDS)
    fired = _run(
        clickhouse,
        Query(TARGET_AT_RISK.sql, TARGET_AT_RISK.columns),
        {},
        TimeRange(seed.now - timedelta(hours=2), seed.now + timedelta(minutes=1)),
    )
    mine = {(r[1], r[2]): r[3] for r in fired if r[0] == seed.plan}
    assert mine[(land_late_targets()[0], seed.a1)] == 1.0
    assert mine[(land_late_targets()[0], seed.a2)] == 0.0


def _vars(**kw: tuple[str, ...]) -> dict[str, VariableValue]:
    return {k: VariableValue(v, ("a", "b", "c")) for k, v in kw.items()}


T = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), interval_s=0)


@pytest.mark.pure
def test_expander_follows_the_plugin() -> None:
    # Catches: an expander more lenient than the plugin (tests would pass on SQL Grafana breaks).
    sql = (
        "WHERE $__conditionalAll(x IN (${v:singlequote}), $v) AND $__timeFilter(t) "
        "AND $__interval_s = 1"
    )
    assert expand(sql, _vars(v=(ALL,)), T) == (
        "WHERE 1=1 AND t >= toDateTime(1767225600) AND t <= toDateTime(1767312000) AND 1 = 1"
    )
    assert expand("x IN (${v:singlequote})", _vars(v=("o'k", "b")), T) == "x IN ('o\\'k','b')"
    kept = expand("$__conditionalAll(x IN (${v:singlequote}), $v)", _vars(v=("a",)), T)
    assert kept == "x IN ('a')"
    assert expand("${v:sqlstring}", _vars(v=("o'k",)), T) == "'o''k'"
    assert expand("$v", {"v": VariableValue(("p@1",), multi=False)}, T) == "p@1"
    assert expand("${v:singlequote}", _vars(v=(ALL,)), T) == "'a','b','c'"
    assert (
        expand("$__timeInterval(c)", {}, T) == "toStartOfInterval(toDateTime(c), INTERVAL 1 second)"
    )
    assert expand("$__fromTime_ms", {}, T) == "fromUnixTimestamp64Milli(1767225600000)"
    with pytest.raises(MacroError):
        expand("$__timeFilterr(c)", {}, T)
    with pytest.raises(MacroError):
        expand("$unknown", {}, T)


def test_pipeline_completeness_per_agency(clickhouse: Client, seed: Seed) -> None:
    # Catches: the completeness panel summing every judgment of a day instead of its latest,
    # counting a day before an agency's first manifest (or today, still running) as one without
    # a manifest, a share of the wrong way round, and the threshold's status on the wrong side.
    panel = next(p for p in pipeline().panels if p.title.startswith("Độ đầy đủ dữ liệu"))
    assert isinstance(panel.query, Query)
    rows = _run(clickhouse, panel.query, _variables(seed), _range(seed))
    shown = {r[0]: r[2:] for r in rows}
    # by hand from JUDGED: A1 reported 10 + 5 + 3 = 18, held 9 + 5 + 3 = 17; its days run from
    # 4 days ago to yesterday (4), 3 of them with a manifest
    assert shown[seed.a1] == (pytest.approx(17 / 18), 18, 17, 1, 2, 3, 1, "Chưa đủ")
    # A2 from its only manifest 3 days ago to yesterday: 3 days, 1 with a manifest
    assert shown[seed.a2] == (1.0, 4, 4, 0, 0, 1, 2, "Đủ")
    assert 17 / 18 < completeness_threshold() <= 1.0
    alone = _run(clickhouse, panel.query, _variables(seed, scope="false"), _range(seed))
    assert [r[0] for r in alone] == [seed.a1]
