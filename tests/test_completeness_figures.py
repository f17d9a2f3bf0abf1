"""Completeness on every figure (issue 18), through the real API over HTTP and the public page:
each figure answer's provenance says how much of the source's reported dossiers its population
holds, for its period's ended days and its agency scope, judged at its instant; the page marks a
figure that is incomplete beyond MOTCUA_COMPLETENESS_THRESHOLD, and only such a figure.

The store: a small tree of our own (R with S1, S2, S3 under it), dossiers stored and folded,
daily manifests for some of their days (by id and by count, one day skipped, S3 never sending),
judged by the reconciler's own judgment (core/figures/completeness.py evaluate) at a fixed
instant; the API reads with a fixed clock, so "the ended days" are the test's own. Every expected
number is counted by hand below from the same lists the store was filled from.
"""

from __future__ import annotations

import re
import threading
import time as clock
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from clickhouse_connect.driver.client import Client

from core.figures.completeness import summary
from core.figures.reads import Read
from core.figures.reconciliation import RECONCILIATION_COLUMNS, evaluate
from core.figures.refolder import catch_up
from core.storage.clickhouse import connect
from core.storage.pool import pooled
from core.zone import VN
from services.api.app import create_app
from services.api.deps import ApiContext
from services.api.keys import KeyStore, Role
from tests.helpers import received, resolved
from tests.test_page import headless, vn_percent
from tests.test_replay import store

# The API's "now" (its clock) and the instant the days were judged, both fixed: the ended days
# are 1-6 March. An earlier judgment of S1's 2nd (EARLIER) is all an as-of instant before
# JUDGED_AT sees, and what the latest judgment supersedes.
NOW = datetime(2026, 3, 7, 12, tzinfo=VN)
JUDGED_AT = datetime(2026, 3, 7, 6, tzinfo=VN)
EARLIER = JUDGED_AT - timedelta(hours=2)
LAST_ENDED = date(2026, 3, 6)
DEFAULT_THRESHOLD = 0.99  # MOTCUA_COMPLETENESS_THRESHOLD's default (services/api/settings.py)
MARCH = (date(2026, 3, 1), date(2026, 3, 31))

# Dossiers stored, per agency and day of March: their id suffixes.
STORED: dict[str, dict[int, list[str]]] = {
    "S1": {2: ["a", "b", "x"], 3: ["d", "e"], 4: ["f", "g", "h"], 5: ["i"], 6: ["j"]},
    "S2": {3: ["k", "l"]},
    "S3": {2: ["m", "n"]},
}
# The source's manifests, per agency and day: the ids it lists, or only its count. S1 lists c,
# which motcua never got, and not x, which it holds; reports 4 on the 4th (3 held); sends none
# on the 5th. S2 sends once, complete. S3 and R send none.
MANIFESTS: dict[str, dict[int, list[str] | int]] = {
    "S1": {2: ["a", "b", "c"], 3: ["d", "e"], 4: 4, 6: 1},
    "S2": {3: 2},
}
NAMES = ("R", "S1", "S2", "S3")


def march(day: int, hour: float = 9.0) -> datetime:
    return datetime.combine(date(2026, 3, day), time(), VN) + timedelta(hours=hour)


def hand(names: tuple[str, ...], first: date, last: date, threshold: float) -> dict[str, Any]:
    """The completeness of these agencies over [first, last], counted from the lists above: a
    listed day by id, a counted day by count; each sender expects a manifest every ended day
    from its first one (or the period's first day)."""
    last = min(last, LAST_ENDED)
    reported = held = missing = extra = days = expected = senders = 0
    for name in names:
        sent = MANIFESTS.get(name, {})
        if not sent:
            continue
        senders += 1
        start = max(first, date(2026, 3, min(sent)))
        expected += max((last - start).days + 1, 0)
        for d, listed in sent.items():
            if not first <= date(2026, 3, d) <= last:
                continue
            days += 1
            have = set(STORED[name].get(d, []))
            if isinstance(listed, list):
                reported += len(listed)
                held += len(set(listed) & have)
                missing += len(set(listed) - have)
                extra += len(have - set(listed))
            else:
                reported += listed
                held += min(listed, len(have))
                missing += max(listed - len(have), 0)
                extra += max(len(have) - listed, 0)
    share = held / reported if reported else None
    return {
        "reported": reported,
        "held": held,
        "missing": missing,
        "extra": extra,
        "share": None if share is None else round(share, 6),
        "manifest_days": days,
        "days_without_manifest": expected - days,
        "agencies_without_manifests": len(names) - senders,
        "threshold": threshold,
        "incomplete": share is not None and share < threshold,
    }


@dataclass(frozen=True)
class World:
    root: str

    def code(self, name: str) -> str:
        return self.root if name == "R" else f"{self.root}_{name}"

    def dossier(self, name: str, suffix: str) -> str:
        return f"{self.code(name)}-{suffix}"


def _agencies(client: Client, w: World) -> None:
    rows = []
    for name in NAMES:
        parent = None if name == "R" else w.code("R")
        rows.append(
            [w.code(name), date(2022, 1, 1), None, f"Sở thử {name}", "province", parent]
            + [uuid.uuid4(), NOW, "test-suite", "{}", f"motcua.reference.agency.{w.code(name)}"]
            + [0, NOW]
        )
    columns = ["agency_code", "valid_from", "valid_to", "name", "level", "parent_code"]
    columns += ["event_id", "occurred_at", "source", "payload", "subject", "stream_seq"]
    client.insert("agencies", rows, column_names=[*columns, "published_at"])


def _events(w: World) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, days in STORED.items():
        a = w.code(name)
        for d, suffixes in days.items():
            for i, suffix in enumerate(suffixes):
                dossier = w.dossier(name, suffix)
                out.append(received(a, dossier, march(d), due=march(d + 3, 17)))
                if i % 2 == 0:  # every other one finished: the on-time figure has a population
                    out.append(resolved(a, dossier, march(d, 15)))
    for name, days in MANIFESTS.items():
        for d, listed in days.items():
            ids = [w.dossier(name, s) for s in listed] if isinstance(listed, list) else None
            out.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "type": "manifest.daily",
                    "schema_version": 1,
                    "occurred_at": march(d + 1, 0.25).isoformat(),
                    "agency_code": w.code(name),
                    "source": "test-source",
                    "day": date(2026, 3, d).isoformat(),
                    "dossiers_received": len(ids) if ids is not None else listed,
                    "dossiers_finished": 0,
                    "dossiers_open": 0,
                    "feedback_filed": 0,
                    "feedback_answered": 0,
                    **({"received_ids": ids} if ids is not None else {}),
                }
            )
    return out


@pytest.fixture(scope="module")
def world(clickhouse: Client) -> World:
    w = World(f"CP{uuid.uuid4().hex[:6].upper()}")
    _agencies(clickhouse, w)
    store(clickhouse, _events(w))
    catch_up(clickhouse)
    # The reconciler's own judgment of exactly our agency-days (a Reconciler's first step would
    # judge every manifest of the shared session store, stamped with our fixed instant).
    keys = [(w.code(n), date(2026, 3, d)) for n, days in MANIFESTS.items() for d in days]
    judged = evaluate(clickhouse, keys, JUDGED_AT.astimezone(UTC), Read.of(clickhouse, None))
    assert len(judged) == len(keys)
    # S1's 2nd as judged before any of its dossiers had arrived: a, b, c all missing
    (first,) = [r for r in judged if (r[0], r[1]) == (w.code("S1"), date(2026, 3, 2))]
    older = dict(zip(RECONCILIATION_COLUMNS, first, strict=True))
    older.update(evaluated_at=EARLIER, data_until=EARLIER, stored_received=0, held_received=0)
    older.update(missing=3, extra=0, status="missing")
    clickhouse.insert(
        "reconciliation_days",
        [[older[c] for c in RECONCILIATION_COLUMNS]],
        column_names=list(RECONCILIATION_COLUMNS),
    )
    return w


class Api:
    """The API on a real socket (uvicorn in a thread), reading through a pool of clients as in
    production, each query's SQL recorded."""

    def __init__(self, clickhouse_url: str, keys: KeyStore, threshold: float) -> None:
        self.sql: list[str] = []
        self._lock = threading.Lock()

        def client() -> Client:
            made = connect(clickhouse_url, read_only=True)
            real = made.query

            def query(sql: str, *args: Any, **kwargs: Any) -> Any:
                with self._lock:
                    self.sql.append(sql)
                return real(sql, *args, **kwargs)

            made.query = query  # type: ignore[method-assign]
            return made

        async def ready() -> bool:
            return True

        self.pool = pooled(client, 3)
        context = ApiContext(
            clickhouse=self.pool,
            nats_ready=ready,
            keys=keys,
            clock=lambda: NOW.astimezone(UTC),
            completeness_threshold=threshold,
        )
        config = uvicorn.Config(
            create_app(context), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> Api:
        self.thread.start()
        while not self.server.started:
            clock.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.pool.close()


@pytest.fixture(scope="module")
def token(clickhouse: Client) -> str:
    return KeyStore(clickhouse).create("completeness (test)", Role.auditor, "test-suite")[1]


@pytest.fixture(scope="module")
def api(clickhouse: Client, clickhouse_url: str) -> Iterator[Api]:
    with Api(clickhouse_url, KeyStore(clickhouse), DEFAULT_THRESHOLD) as running:
        yield running


def get(api: Api, token: str, path: str, **params: Any) -> Any:
    response = httpx.get(
        f"{api.url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_hand_count_is_what_the_lists_say() -> None:
    # Catches: a hand count that drifted from the story the lists tell (the API tests below
    # compare with it): R's subtree has 12 reported dossiers (3 + 2 + 4 + 1 + 2), 10 held
    # (2 + 2 + 3 + 1 + 2), c and one of the 4th's missing, x extra, 5 manifest days, S1's 5th
    # and S2's 4th-6th without one, and R and S3 never sending.
    counted = hand(NAMES, *MARCH, DEFAULT_THRESHOLD)
    assert counted == {
        "reported": 12,
        "held": 10,
        "missing": 2,
        "extra": 1,
        "share": round(10 / 12, 6),
        "manifest_days": 5,
        "days_without_manifest": 4,
        "agencies_without_manifests": 2,
        "threshold": 0.99,
        "incomplete": True,
    }


def test_every_figure_answer_carries_its_completeness(world: World, api: Api, token: str) -> None:
    # Catches: a figure answer without completeness, one computed over another period (the
    # running days of the period, or the whole year), another scope (the agency without its
    # subtree), at another instant, or from a day's older judgment; and a route that runs the
    # completeness query more than once (per group or per row).
    w = world
    march_ = {"from": "2026-03-01", "to": "2026-03-31"}
    everything = hand(NAMES, *MARCH, DEFAULT_THRESHOLD)
    asked: list[tuple[str, Callable[[Any], Any]]] = [
        ("/v1/metrics/online_share", lambda b: b["provenance"]["completeness"]),
        ("/v1/metrics/on_time_rate", lambda b: b["provenance"]["completeness"]),
        ("/v1/metrics/feedback_answered_on_time", lambda b: b["provenance"]["completeness"]),
        ("/v1/index766", lambda b: b["provenance"]["completeness"]),
        ("/v1/index766", lambda b: b["results"][0]["completeness"]),
        ("/v1/reports/ii06a", lambda b: b["provenance"]["completeness"]),
    ]
    for path, pick in asked:
        before = len(api.sql)
        body = get(api, token, path, agency=w.code("R"), **march_)
        assert pick(body) == everything, path
        judged = [s for s in api.sql[before:] if "reconciliation_days" in s]
        assert len(judged) == 1, (path, len(judged))
    # the same figure asked as a board asks it (a range in ms) has the same population
    start, end = march(1, 0), march(31, 24) - timedelta(milliseconds=1)
    body = get(
        api,
        token,
        "/v1/metrics/online_share",
        agency=w.code("R"),
        from_ms=int(start.timestamp() * 1000),
        to_ms=int(end.timestamp() * 1000),
    )
    assert body["provenance"]["completeness"] == everything
    # the figure itself is unchanged: every stored dossier received counts, held or extra
    assert body["groups"][0]["denominator"] == sum(
        len(v) for d in STORED.values() for v in d.values()
    )
    # one agency over two days of it: 3rd and 4th of S1 (5 of 6 held, no day without manifest)
    one = get(
        api,
        token,
        "/v1/metrics/on_time_rate",
        agency=w.code("S1"),
        to="2026-03-04",
        **{"from": "2026-03-03"},
    )
    assert one["provenance"]["completeness"] == hand(
        ("S1",), date(2026, 3, 3), date(2026, 3, 4), DEFAULT_THRESHOLD
    )
    assert one["provenance"]["completeness"]["share"] == round(5 / 6, 6)


def test_grouped_answers_carry_each_groups_completeness(world: World, api: Api, token: str) -> None:
    # Catches: a group's completeness that is its scope's instead of its own agency's, a
    # per-group query (N groups, N queries), and completeness on a grouping it cannot follow.
    w = world
    before = len(api.sql)
    body = get(
        api,
        token,
        "/v1/metrics/online_share",
        agency=w.code("R"),
        group_by="agency",
        **{"from": "2026-03-01", "to": "2026-03-31"},
    )
    assert len([s for s in api.sql[before:] if "reconciliation_days" in s]) == 1
    groups = {g["group"]: g["completeness"] for g in body["groups"]}
    assert set(groups) == {w.code(n) for n in ("S1", "S2", "S3")}  # agencies with dossiers
    for name in ("S1", "S2", "S3"):
        assert groups[w.code(name)] == hand((name,), *MARCH, DEFAULT_THRESHOLD), name
    assert groups[w.code("S3")]["share"] is None  # never sent a manifest: unknown, not 0
    assert body["provenance"]["completeness"] == hand(NAMES, *MARCH, DEFAULT_THRESHOLD)
    by_month = get(
        api,
        token,
        "/v1/metrics/online_share",
        agency=w.code("R"),
        group_by="month",
        **{"from": "2026-03-01", "to": "2026-03-31"},
    )
    assert all("completeness" not in g for g in by_month["groups"])
    # the index per agency: each unit with its subtree
    index = get(
        api,
        token,
        "/v1/index766",
        agency=w.code("R"),
        group_by="agency",
        **{"from": "2026-03-01", "to": "2026-03-31"},
    )
    results = {r["agency"]: r["completeness"] for r in index["results"]}
    assert results[w.code("R")] == hand(NAMES, *MARCH, DEFAULT_THRESHOLD)
    assert results[w.code("S1")] == hand(("S1",), *MARCH, DEFAULT_THRESHOLD)


def test_completeness_is_judged_at_the_figures_instant(
    world: World, api: Api, token: str, clickhouse: Client
) -> None:
    # Catches: an as-of figure whose completeness reads judgments made after its instant, and a
    # province-wide figure whose completeness is narrowed to some scope or judged at another time.
    w = world
    before = get(
        api,
        token,
        "/v1/metrics/online_share",
        agency=w.code("R"),
        as_of=(JUDGED_AT - timedelta(hours=1)).isoformat(),
        **{"from": "2026-03-01", "to": "2026-03-31"},
    )
    # by hand: then, only S1's 2nd was judged (EARLIER): 3 listed, none held; S1 expected a
    # manifest on each of the 2nd to 6th (4 without); R, S2 and S3 had sent none yet
    assert before["provenance"]["completeness"] == {
        "reported": 3,
        "held": 0,
        "missing": 3,
        "extra": 0,
        "share": 0.0,
        "manifest_days": 1,
        "days_without_manifest": 4,
        "agencies_without_manifests": 3,
        "threshold": DEFAULT_THRESHOLD,
        "incomplete": True,
    }
    province = get(
        api, token, "/v1/metrics/online_share", **{"from": "2026-03-01", "to": "2026-03-31"}
    )
    whole = summary(clickhouse, *MARCH, NOW, threshold=DEFAULT_THRESHOLD).as_dict()
    assert province["provenance"]["completeness"] == whole
    assert whole["reported"] >= hand(NAMES, *MARCH, DEFAULT_THRESHOLD)["reported"]


@pytest.fixture(scope="module")
def lenient(clickhouse: Client, clickhouse_url: str) -> Iterator[Api]:
    """The same API with MOTCUA_COMPLETENESS_THRESHOLD = 0.8."""
    with Api(clickhouse_url, KeyStore(clickhouse), 0.8) as running:
        yield running


def marked(html: str) -> bool:
    return 'data-completeness="incomplete"' in html


def test_the_threshold_setting_decides_what_is_incomplete(
    world: World, lenient: Api, token: str
) -> None:
    # Catches: a threshold that is not the setting (a constant), or compared the wrong way: at
    # 0.8, R's 10 of 12 (83%) and S1's 8 of 10 (exactly 80%) are complete.
    w = world
    for name in ("R", "S1"):
        body = get(
            lenient,
            token,
            "/v1/metrics/online_share",
            agency=w.code(name),
            **{"from": "2026-03-01", "to": "2026-03-31"},
        )
        names = NAMES if name == "R" else (name,)
        assert body["provenance"]["completeness"] == hand(names, *MARCH, 0.8)
        assert body["provenance"]["completeness"]["incomplete"] is False
    page = httpx.get(f"{lenient.url}/co-quan/{w.code('R')}", timeout=120)
    assert page.status_code == 200 and not marked(page.text)


def _note(names: tuple[str, ...]) -> str:
    """The page's sentence for an incomplete figure, from the hand count (Vietnamese numbers
    written by tests/test_page.py's own formatter)."""
    c = hand(names, date(2026, 1, 1), NOW.date(), DEFAULT_THRESHOLD)
    return (
        f"Dữ liệu chưa đầy đủ: hệ thống nguồn báo {c['reported']} hồ sơ, đã nhận {c['held']} "
        f"({vn_percent(c['held'] / c['reported'])}), dưới ngưỡng {vn_percent(DEFAULT_THRESHOLD)}; "
        f"{c['days_without_manifest']} ngày chưa có bảng kê cuối ngày của hệ thống nguồn."
    )


def test_the_page_marks_an_incomplete_figure_and_only_that(world: World, api: Api) -> None:
    # Catches: an incomplete figure shown as if whole, a mark on a complete one (S2: 2 of 2) or
    # an unknown one (S3: never sent a manifest), a note whose numbers are not the population's,
    # and the province table marking the wrong rows.
    w = world
    pages = {n: httpx.get(f"{api.url}/co-quan/{w.code(n)}", timeout=120) for n in NAMES}
    assert all(p.status_code == 200 for p in pages.values())
    assert marked(pages["R"].text) and marked(pages["S1"].text)
    assert not marked(pages["S2"].text) and not marked(pages["S3"].text)
    for name, names in (("R", NAMES), ("S1", ("S1",))):
        text = re.sub(r"<[^>]+>", "", pages[name].text)
        assert _note(names) in text, name
    assert "Chưa đủ dữ liệu nguồn" in pages["R"].text  # on every card of the block
    province = httpx.get(f"{api.url}/", timeout=120)
    assert province.status_code == 200

    def row(code: str) -> str:
        found = re.search(rf'<tr data-agency="{code}">(.*?)</tr>', province.text, re.S)
        assert found, code
        return found.group(1)

    assert marked(row(w.code("S1")))
    assert not marked(row(w.code("S2"))) and not marked(row(w.code("S3")))
    assert "“Chưa đủ dữ liệu”" in province.text  # the footnote that explains the mark


def test_the_mark_in_a_headless_browser(chromium: str, world: World, api: Api) -> None:
    # `chromium` first: without a browser the test skips before anything is read.
    # Catches: a mark a browser does not render as text (an attribute only, broken markup).
    w = world
    dom = headless(chromium, "--dump-dom", url=f"{api.url}/co-quan/{w.code('R')}")
    note = re.search(r'<p class="incomplete"[^>]*>(.*?)</p>', dom, re.S)
    assert note and _note(NAMES) in re.sub(r"<[^>]+>", "", note.group(1))
    assert 'class="card card-incomplete"' in dom


def test_a_page_reads_its_completeness_once(world: World, api: Api) -> None:
    # Catches: the page asking for completeness per figure or per row (four figures, the index
    # and a row per agency, each its own query).
    before = len(api.sql)
    page = httpx.get(f"{api.url}/co-quan/{world.code('R')}", timeout=120)
    assert page.status_code == 200
    assert len([s for s in api.sql[before:] if "reconciliation_days" in s]) == 1
