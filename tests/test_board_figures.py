"""THE EQUALITY GRID: every figure a Grafana board shows equals the API's answer to the same
question, exactly, for any range and any agency.

No Grafana server can run here, so the test plays Grafana and its Infinity datasource on the
committed dashboard files (deploy/grafana/dashboards), as the plugin documents them:
- Grafana expands `${__from}`/`${__to}` to the range's Unix milliseconds and `${agency}`,
  `${scope}` (single values) raw; `${api_url}` is the API under test (real uvicorn, real HTTP);
- the backend parser's root selector (JSONata) is a dotted path with `[n]` indexes here, and
  anything else fails the test rather than being guessed; an object at the root is one row
  (what the plugin's framer does, not verified here: no plugin can run);
- a stat shows its column's last non-null value, or the panel's "no value" text.
The API's answer is asked the way an auditor asks it: `from`/`to` as the Asia/Ho_Chi_Minh days
of the range, the same agency and rollup. The store holds a province tree that changed on
1/7/2025, dossiers and feedback received, finished, paid and answered around local midnight
(where a UTC day cut differs) and in both a department and the communes below.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import threading
import time as clock
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from clickhouse_connect.driver.client import Client

from core.figures.refolder import catch_up
from core.storage.clickhouse import connect
from core.storage.pool import pooled
from core.zone import VN
from services.api.app import create_app
from services.api.deps import ApiContext
from services.api.keys import KeyStore, Role
from tests.helpers import dossier_event, feedback_event, filed, received, resolved
from tests.test_replay import store
from tools.grafana import export
from tools.grafana.model import API_DATASOURCE_UID, NO_DATA

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "deploy" / "grafana" / export.DASHBOARDS_DIR
CUT = date(2025, 7, 1)  # the province's restructuring: districts abolished, communes merged
MS = timedelta(milliseconds=1)
GRID_THREADS = 3  # questions asked at once, each on its own reader


def local(d: date, hour: float = 0.0) -> datetime:
    return datetime.combine(d, time(), VN) + timedelta(hours=hour)


# --- the store -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    root: str

    def code(self, name: str) -> str:
        return self.root if name == "R" else f"{self.root}_{name}"

    def records(self) -> list[tuple[str, str | None, str, date, date | None]]:
        """(code, parent, level, valid_from, valid_to): a department, a district with a commune
        until the cut, then that commune merged into a new one directly under the province."""
        c = self.code
        return [
            (c("R"), None, "province", date(2022, 1, 1), None),
            (c("S1"), c("R"), "province", date(2022, 1, 1), None),
            (c("D1"), c("R"), "district", date(2022, 1, 1), CUT),
            (c("C1"), c("D1"), "commune", date(2022, 1, 1), CUT),
            (c("M1"), c("R"), "commune", CUT, None),
        ]


def _agencies(client: Client, tree: Tree, now: datetime) -> None:
    rows = [
        [code, start, end, f"UBND {code}", level, parent, uuid.uuid4(), now, "test-suite", "{}"]
        + [f"motcua.reference.agency.{code}", 0, now]
        for code, parent, level, start, end in tree.records()
    ]
    columns = ["agency_code", "valid_from", "valid_to", "name", "level", "parent_code"]
    columns += ["event_id", "occurred_at", "source", "payload", "subject", "stream_seq"]
    client.insert("agencies", rows, column_names=[*columns, "published_at"])


def _events(tree: Tree, now: datetime) -> list[dict[str, Any]]:
    """Dossiers and feedback on the days around the cut and the last 75 days, at hours either side
    of local midnight among others, in every agency that exists on the day."""
    rng = random.Random(7860)
    days = [date(2025, 5, 20) + timedelta(days=i) for i in range(75)]
    today = now.astimezone(VN).date()
    days += [today - timedelta(days=i) for i in range(75, -1, -1)]
    out: list[dict[str, Any]] = []
    n = 0
    for day in days:
        for name in ("R", "S1", "D1", "C1", "M1"):
            if name in ("D1", "C1") and day >= CUT or name == "M1" and day < CUT:
                continue
            a = tree.code(name)
            for hour in rng.sample((0.5, 9.0, 14.0, 23.5), 2):
                at = local(day, hour)
                if at > now - timedelta(hours=2):
                    continue
                n += 1
                d = f"D{n}"
                due = local(day + timedelta(days=rng.randint(1, 8)), 17)
                channel = rng.choice(("online", "online", "direct", "postal"))
                out.append(received(a, d, at, due=due, channel=channel, fee=True))
                end = local(day + timedelta(days=rng.randint(0, 10)), rng.choice((0.5, 10, 23.5)))
                if rng.random() < 0.8 and end < now - timedelta(hours=1):
                    out.append(resolved(a, d, max(end, at + timedelta(minutes=5))))
                if rng.random() < 0.4:
                    paid = at + timedelta(hours=rng.choice((1, 12)))
                    if paid < now:
                        online = rng.choice(("online", "offline"))
                        out.append(
                            dossier_event(
                                "paid", a, d, paid, channel=online, amount_vnd=rng.choice((0, 5))
                            )
                        )
                if rng.random() < 0.6:
                    out.append(dossier_event("digitized", a, d, at + timedelta(minutes=30)))
                if rng.random() < 0.25:
                    rated = at + timedelta(hours=3)
                    out.append(dossier_event("rated", a, d, rated, rating="unsatisfied"))
            if rng.random() < 0.5:
                f = f"F{n}"
                at = local(day, rng.choice((0.5, 23.5, 10.0)))
                if at < now - timedelta(hours=2):
                    out.append(filed(a, f, at, due=local(day + timedelta(days=15), 17)))
                    answer = at + timedelta(days=rng.randint(0, 25), hours=1)
                    if rng.random() < 0.7 and answer < now - timedelta(hours=1):
                        out.append(feedback_event("answered", a, f, answer))
                        if rng.random() < 0.5:
                            out.append(feedback_event("published", a, f, answer))
    return out


# --- the API over HTTP ---------------------------------------------------------------------------


class Api:
    def __init__(self, client: Client, key: str) -> None:
        async def ready() -> bool:
            return True

        app = create_app(ApiContext(clickhouse=client, nats_ready=ready, keys=KeyStore(client)))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.key = key
        self.url = ""
        self.answers: dict[str, Any] = {}

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

    def get(self, url: str) -> Any:
        """The answer to `url`, asked once: several panels ask the same question (61 panels, 54
        distinct questions), and the module's store is seeded once and only read."""
        if url not in self.answers:
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.key}"})
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (loopback)
                self.answers[url] = json.load(response)
        return copy.deepcopy(self.answers[url])


@dataclass(frozen=True)
class Store:
    tree: Tree
    now: datetime


@pytest.fixture(scope="module")
def seeded(clickhouse: Client) -> Store:
    tree = Tree(f"KH{uuid.uuid4().hex[:6].upper()}")
    now = datetime.now(UTC)
    _agencies(clickhouse, tree, now)
    store(clickhouse, _events(tree, now))
    catch_up(clickhouse)
    return Store(tree, now)


@pytest.fixture(scope="module")
def api(clickhouse: Client, clickhouse_url: str) -> Iterator[Api]:
    _, token = KeyStore(clickhouse).create("grafana boards (test)", Role.viewer, "test-suite")
    # a pool of read-only clients, as `motcua api` has (services/api/main.py): the grid asks
    # several questions at a time, as a board's panels do
    readers = pooled(lambda: connect(clickhouse_url, read_only=True), GRID_THREADS)
    with Api(readers, token) as running:
        yield running
    readers.close()


# --- Grafana and Infinity, played ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    panel: str
    kind: str  # the panel type
    no_value: str | None
    target: dict[str, Any]

    @property
    def key(self) -> str:
        t = self.target
        return json.dumps([t["url"], t["url_options"], t["root_selector"], t["columns"]])


def api_targets() -> list[Target]:
    """Every API target of every committed board, each distinct one once."""
    seen: dict[str, Target] = {}
    for path in sorted(BOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["uid"] != API_DATASOURCE_UID:
                    continue
                no_value = panel.get("fieldConfig", {}).get("defaults", {}).get("noValue")
                t = Target(f"{board['uid']}/{panel['title']}", panel["type"], no_value, target)
                seen.setdefault(t.key, t)
    return list(seen.values())


TARGETS = api_targets()
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


def select(document: Any, path: str) -> Any:
    """The subset of JSONata the boards use: a dotted path with [n] indexes ('' is the root)."""
    node = document
    for segment in [s for s in path.split(".") if s]:
        match = _SEGMENT.match(segment)
        assert match, f"root selector {path!r}: more JSONata than this test can play"
        node = None if node is None else node.get(match[1])
        for index in re.findall(r"\[(\d+)\]", match[2]):
            node = node[int(index)] if isinstance(node, list) and len(node) > int(index) else None
    return node


def frame(document: Any, target: dict[str, Any]) -> list[dict[str, Any]]:
    rows = select(document, target["root_selector"])
    if rows is None:
        return []
    rows = rows if isinstance(rows, list) else [rows]  # an object is one row
    return [{c["text"]: select(row, c["selector"]) for c in target["columns"]} for row in rows]


def shown(t: Target, rows: list[dict[str, Any]]) -> Any:
    """What the panel shows of one target: a stat its last non-null value (or its no-value
    text), a table or a series its rows."""
    if t.kind != "stat":
        return rows
    values = {
        name: next((r[name] for r in reversed(rows) if r[name] is not None), None)
        for name in (c["text"] for c in t.target["columns"])
    }
    return {k: (t.no_value if v is None else v) for k, v in values.items()}


@dataclass(frozen=True)
class Range:
    label: str
    start: datetime
    end: datetime


def ranges(now: datetime) -> list[Range]:
    today = now.astimezone(VN).date()
    return [
        Range("this month", local(today.replace(day=1)), now),
        # a whole month or quarter ends, as Grafana's time picker ends one, 1 ms before the next
        Range("June 2025", local(date(2025, 6, 1)), local(date(2025, 7, 1)) - MS),
        Range("Q3 2025", local(date(2025, 7, 1)), local(date(2025, 10, 1)) - MS),
        Range("20/6-10/7/2025", local(date(2025, 6, 20), 10), local(date(2025, 7, 10), 15)),
        Range(
            "22:00-02:00",
            local(today - timedelta(days=3), 22),
            local(today - timedelta(days=2), 2),
        ),
        Range("March 2020 (no data)", local(date(2020, 3, 1)), local(date(2020, 3, 31), 23.99)),
    ]


def _ms(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


def board_value(api: Api, t: Target, r: Range, agency: str, scope: str) -> Any:
    """Grafana expands the target's variables and Infinity sends it."""
    values = {"__from": _ms(r.start), "__to": _ms(r.end), "agency": agency, "scope": scope}
    values["api_url"] = api.url

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], text)

    params = [(p["key"], expand(p["value"])) for p in t.target["url_options"]["params"]]
    url = f"{expand(t.target['url'])}?{urllib.parse.urlencode(params)}"
    return shown(t, frame(api.get(url), t.target))


def api_value(api: Api, t: Target, r: Range, agency: str, scope: str, zone: Any = VN) -> Any:
    """The auditor's question: the range's days in Asia/Ho_Chi_Minh as from/to."""
    # The question is the test's own (range, agency, subtree or not); from the panel only what
    # it asks beyond that (group_by, a level, a domain), never a Grafana variable.
    params = [
        ("from", r.start.astimezone(zone).date().isoformat()),
        ("to", r.end.astimezone(zone).date().isoformat()),
        ("agency", agency),
        ("rollup", scope),
    ]
    params += [
        (p["key"], p["value"])
        for p in t.target["url_options"]["params"]
        if "${" not in p["value"] and p["key"] not in ("from", "to", "agency", "rollup")
    ]
    url = f"{api.url}{t.target['url'].removeprefix('${api_url}')}"
    document = api.get(f"{url}?{urllib.parse.urlencode(params)}")
    return shown(t, frame(document, t.target))


def comparable(value: Any) -> Any:
    """The read instant (computed_at) differs between any two requests by nature."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "computed_at"}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def scopes(tree: Tree) -> list[tuple[str, str, str]]:
    """(label, agency, scope): the province and the agency alone, a district abolished at the
    cut, a commune before it and one after it."""
    c = tree.code
    return [
        ("province", c("R"), "true"),
        ("province office alone", c("R"), "false"),
        ("district (until 1/7/2025)", c("D1"), "true"),
        ("commune (until 1/7/2025)", c("C1"), "true"),
        ("commune (from 1/7/2025)", c("M1"), "true"),
    ]


def test_the_boards_read_every_figure_from_the_api() -> None:
    # Catches: a board figure left on another source (the snapshots gave only the current
    # month and year), or a board without any: the grid below would then prove nothing.
    assert len(TARGETS) >= 30, len(TARGETS)
    paths = {t.target["url"].split("?")[0] for t in TARGETS}
    assert "${api_url}/v1/index766" in paths and "${api_url}/v1/metrics/on_time_rate" in paths


@pytest.mark.parametrize("range_index", range(6))
def test_every_board_figure_equals_the_api(seeded: Store, api: Api, range_index: int) -> None:
    # Catches: a board whose range, agency or subtree switch asks another question than the API
    # (a range start ignored, days cut in UTC, an agency without its subtree, the agency-alone
    # switch ignored), a panel asking a parameter the API refuses, no data shown as 0.
    r = ranges(seeded.now)[range_index]
    counted = 0
    report = os.environ.get("MOTCUA_GRID_REPORT")  # a file to list the grid's cells in
    cells = [(lab, agency, scope, t) for lab, agency, scope in scopes(seeded.tree) for t in TARGETS]

    def ask(cell: tuple[str, str, str, Target]) -> tuple[Any, Any]:
        _, agency, scope, t = cell
        return (
            comparable(board_value(api, t, r, agency, scope)),
            comparable(api_value(api, t, r, agency, scope)),
        )

    # side by side, as a board's panels ask (one process would leave the second core idle)
    with ThreadPoolExecutor(GRID_THREADS) as pool:
        answers = list(pool.map(ask, cells))
    for (label, _, _, t), (board, answer) in zip(cells, answers, strict=True):
        assert board == answer, (t.panel, label, r.label)
        counted += 1
        if report:
            with open(report, "a", encoding="utf-8") as out:
                row = {"panel": t.panel, "agency": label, "range": r.label}
                out.write(json.dumps({**row, "api": answer, "board": board}) + "\n")
    assert counted == len(TARGETS) * 5


def test_the_grid_tells_the_questions_apart(seeded: Store, api: Api) -> None:
    # Catches a grid that could not fail: the scope switch, the local days and the range must
    # each change some figure on this store, and a range with no data shows no data.
    stats = [t for t in TARGETS if t.kind == "stat" and "/v1/metrics/" in t.target["url"]]
    on_time = next(t for t in stats if t.target["url"].endswith("/on_time_rate"))
    root = seeded.tree.code("R")
    _, june, _, custom, midnight, empty = ranges(seeded.now)
    whole = board_value(api, on_time, june, root, "true")
    alone = board_value(api, on_time, june, root, "false")
    assert whole != alone
    # a UTC day cut would count other dossiers on either side of local midnight
    differs = [
        t
        for t in stats
        if api_value(api, t, midnight, root, "true")
        != api_value(api, t, midnight, root, "true", zone=UTC)
    ]
    assert differs, "no figure depends on the local day cut: seed events near midnight"
    assert board_value(api, on_time, custom, root, "true") != whole
    shows = {
        t.panel: board_value(api, t, empty, root, "true")
        for t in stats
        if "computed_at" not in json.dumps(t.target["columns"])
    }
    assert {p: v for p, v in shows.items() if set(v.values()) != {NO_DATA}} == {}
    # the index with nothing counted is no data, not the points of the empty-population rules
    index = next(t for t in TARGETS if t.kind == "stat" and t.target["url"].endswith("/index766"))
    assert board_value(api, index, empty, root, "true") == {"points": NO_DATA}
    assert board_value(api, index, june, root, "true") != {"points": NO_DATA}
