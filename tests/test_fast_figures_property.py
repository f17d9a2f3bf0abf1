"""PROPERTY TEST: the figures' fast path equals a plain fold of the raw events, exactly.

Every figure the API serves (metric_query(...).run, report_ii06a.compute, index766.leaf_counts)
must give the same numbers as folding the raw `events` log as it stood at `as_of` with the rules
of commit eeced79 (tests/reference_fold.py, the oracle). Random event streams for 2-4 agencies of
their own are written through the ingest's real path (processor.process + EventWriter.write) in
2-4 batches, each with its own ingested_at, and facts.catch_up folds what was stored after a
random subset of the batches; then random questions (periods, scopes, groupings, rule sets,
judging instants; as of an instant between two batches, as of a batch's exact ingest time, or
live) are asked of both. Compared exactly: groups, numerators, denominators and events behind
each metric row; II.06a's columns per agency and its event total; the index's leaf counts but
for their provenance (LEAF_PROVENANCE).

Catches, in a pre-folded facts table plus a live fold of what came after its watermark:
- an event folded twice or not at all (a duplicate within a batch or across batches, one copy
  before and one after the watermark; an event stored days late; a receipt arriving after its
  resolution), which moves a count or an event total;
- per-dossier aggregates merged wrongly across the two halves: the earliest receipt and due date,
  the k-th supplement request paired with the k-th resubmission, the first payment and any online
  one, the first apology and how many, the latest rating;
- an as-of answer that reads facts folded after the as-of instant, or misses the delta before it;
- judging drift: open dossiers overdue the moment due_at passes, stock figures judged at each
  day/month bucket's end, Asia/Ho_Chi_Minh midnights, month and quarter ends, working-day
  deadlines (Tết 2026), every shipped rule set (from reference@2, apology compliance over the
  dossiers whose due date passed, not those late only by a second supplement request);
- the same dossier id under two agencies mixed up, a scope or filter applied to only one half.

Without core.figures.facts (commit eeced79) catch_up is a no-op and the test checks that the
oracle is a faithful copy of the SQL in use.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from core.figures import index766, report_ii06a, rules
from core.figures.metric_query import metric_query
from core.figures.periods import Filters, Period
from core.ingestion.common import MessageMeta
from core.ingestion.processor import EventRow, process
from core.ingestion.writer import EventWriter
from core.storage.pool import run_all
from tests import reference_fold
from tests.helpers import VN, dossier_event, feedback_event

try:
    from core.figures.refolder import catch_up
except ImportError:  # before the facts tables exist, every answer is already a fold

    def catch_up(client: Client, settle_seconds: float = 0.0) -> int:
        return 0


# Streams per run: about a minute on a 2-core machine against the facts path (each stream is
# written, caught up and asked 3-5 questions); MOTCUA_FAST_FIGURES_EXAMPLES raises it for a long
# run.
EXAMPLES = int(os.environ.get("MOTCUA_FAST_FIGURES_EXAMPLES", "25"))

RULE_SETS = ("reference@1", "lenient-boundary@1", "reference@2", "lenient-boundary@2")
METRIC_IDS = tuple(sorted(reference_fold.METRICS))
DOMAINS = ("dat_dai", "ho_tich", "xay_dung")
LEVELS = ("province", "district", "commune")
PROCEDURES = ("1.004227", "1.001193", "2.000305")
GROUP_BYS = (None, "agency", "domain", "level", "day", "month")

# The events' window: across a year end (two partitions), Tết 2026 and several month ends.
BASE = datetime(2025, 12, 1, tzinfo=VN)
SPAN_DAYS = 170
# A stream clusters around one day, often one where periods and deadlines meet: the year end,
# the end of February, Tết 2026 (14-22/2), the end of a quarter.
FOCUS_DAYS = tuple(
    (d - BASE.date()).days
    for d in (date(2025, 12, 31), date(2026, 2, 13), date(2026, 2, 28), date(2026, 3, 31))
)
SPREAD_DAYS = 25
# After every event of any stream (ends, payments, answers come up to ~45 days after receipt).
LAST_EVENT_DAY = BASE.date() + timedelta(days=SPAN_DAYS + SPREAD_DAYS + 60)
MS_DAY = 86_400_000
MS_HOUR = 3_600_000
# Local times of day where a figure flips: either side of midnight and of the usual 17:00 due
# time, and 1 ms into the day.
EDGE_MS = (0, 1, MS_DAY - 1, 17 * MS_HOUR - 1, 17 * MS_HOUR, 17 * MS_HOUR + 1, 8 * MS_HOUR)

# What leaf counts carry beside the counts and is not compared: the newest ingest time among the
# items, which a facts table may legitimately report differently, and the events behind them,
# which eeced79 summed over every dossier of the scope with a receipt, however old, and which
# now count, like MetricRow.events, the dossiers the index counts (each once).
LEAF_PROVENANCE = ("watermark", "events")

_SEQ = itertools.count(1)


@pytest.fixture(scope="module")
def frozen_log(clickhouse: Client) -> Iterator[Client]:
    """The raw log exactly as inserted while this module runs. `events` is a ReplacingMergeTree:
    a background merge keeps only the later copy of an event stored twice, which moves that
    event's ingested_at forward and changes the oracle's own as-of answers after the fact (a
    known property of the raw fold, not of the fast path), so merges of `events` pause here."""
    clickhouse.command("SYSTEM STOP MERGES events")
    try:
        yield clickhouse
    finally:
        clickhouse.command("SYSTEM START MERGES events")


# --- the event streams -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ev:
    """One event before it gets its agency code and id: `agency` indexes the example's codes."""

    kind: str
    agency: int
    entity_id: str
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stream:
    n_agencies: int
    events: tuple[Ev, ...]
    batch_of: tuple[int, ...]  # per event: the batch it is inserted in
    duplicates: tuple[tuple[int, int], ...]  # (event index, batch): the same event again
    n_batches: int
    catch_up_after: tuple[bool, ...]
    shuffle_seed: int  # order within each batch: receipts may arrive after their resolution


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True once in n draws; False is the simpler choice, the one hypothesis shrinks towards."""
    return draw(st.integers(0, n - 1)) == n - 1


def _ms(draw: st.DrawFn, max_days: float, edges: Sequence[int] = (0, 1)) -> timedelta:
    """A duration up to max_days, often exactly 0 or 1 ms (the instants where figures flip)."""
    ms = draw(st.one_of(st.sampled_from(edges), st.integers(0, int(max_days * MS_DAY))))
    return timedelta(milliseconds=ms)


@st.composite
def instants(draw: st.DrawFn, focus: int) -> datetime:
    day = focus + draw(st.integers(-SPREAD_DAYS, SPREAD_DAYS))
    ms = draw(st.one_of(st.sampled_from(EDGE_MS), st.integers(0, MS_DAY - 1)))
    return BASE + timedelta(days=day, milliseconds=ms)


@st.composite
def due_after(draw: st.DrawFn, start: datetime) -> datetime:
    """A due date: the usual 17:00 local of some day, or any instant, 0-25 days on."""
    if draw(st.booleans()):
        day = start.astimezone(VN).replace(hour=17, minute=0, second=0, microsecond=0)
        return day + timedelta(days=draw(st.integers(0, 25)))
    return start + _ms(draw, 25)


@st.composite
def dossier(draw: st.DrawFn, agency: int, number: int, focus: int) -> list[Ev]:
    did = f"D{number}"  # the same ids recur under every agency: the key is (agency, id)
    evs: list[Ev] = []

    def add(kind: str, at: datetime, **fields: Any) -> None:
        evs.append(Ev(f"dossier.{kind}", agency, did, at, fields))

    recv = draw(instants(focus))
    due = draw(due_after(recv))

    def receipt(at: datetime, due_at: datetime) -> dict[str, Any]:
        return {
            "procedure_code": draw(st.sampled_from(PROCEDURES)),
            "domain_code": draw(st.integers(0, len(DOMAINS) - 1)),
            "level": draw(st.sampled_from(LEVELS)),
            "channel": draw(st.sampled_from(("online", "direct", "postal"))),
            "received_at": at,
            "due_at": due_at,
            "fee_required": draw(st.booleans()),
            "paper_result_required": draw(st.booleans()),
        }

    if not one_in(draw, 10):  # one dossier in ten never sends its receipt
        add("received", recv, **receipt(recv, due))
    if one_in(draw, 4):  # a corrected receipt: another event, other values
        again = recv + _ms(draw, 2)
        add("received", again, **receipt(again, draw(due_after(again))))
    end = draw(st.sampled_from((None, None, "resolved", "resolved", "returned", "withdrawn")))
    if end is not None:
        # mostly after the receipt, sometimes (bad source data) a little before it
        end_at = recv - timedelta(days=1) + _ms(draw, 40, (0, MS_DAY, MS_DAY + 1))
        if end == "resolved":
            add(
                "resolved",
                end_at,
                outcome=draw(st.sampled_from(("approved", "rejected"))),
                e_result=draw(st.booleans()),
            )
            if draw(st.booleans()):
                add("returned", end_at + _ms(draw, 3))
        else:
            add(end, end_at)
    for _ in range(draw(st.integers(0, 3))):
        asked = recv + _ms(draw, 20)
        add("supplement_requested", asked)
        if not one_in(draw, 4):  # one in four still pending
            add("supplement_received", asked + _ms(draw, 15))
    for _ in range(draw(st.integers(0, 2))):
        issued = due - timedelta(days=draw(st.integers(-2, 5))) + _ms(draw, 1)
        add("apology_issued", issued, new_due_at=due + timedelta(days=draw(st.integers(1, 10))))
    for _ in range(draw(st.integers(0, 2))):
        add(
            "paid",
            recv + _ms(draw, 30),
            channel=draw(st.sampled_from(("online", "offline"))),
            amount_vnd=draw(st.sampled_from((0, 50_000, 1_500_000))),
        )
    if draw(st.booleans()):
        add("digitized", recv + _ms(draw, 20))
    for _ in range(draw(st.integers(0, 2))):
        add(
            "rated",
            recv + _ms(draw, 45),
            rating=draw(st.sampled_from(("satisfied", "neutral", "unsatisfied"))),
        )
    if one_in(draw, 5):
        add("late", due + _ms(draw, 2))
    return evs


@st.composite
def feedback_item(draw: st.DrawFn, agency: int, number: int, focus: int) -> list[Ev]:
    fid = f"F{number}"
    evs: list[Ev] = []

    def add(kind: str, at: datetime, **fields: Any) -> None:
        evs.append(Ev(f"feedback.{kind}", agency, fid, at, fields))

    filed_at = draw(instants(focus))
    if not one_in(draw, 10):
        add(
            "filed",
            filed_at,
            filed_at=filed_at,
            topic=draw(st.sampled_from(("procedure", "official"))),
            due_at=draw(due_after(filed_at)),
        )
    answered = None
    if not one_in(draw, 4):
        # 15 working days is about 21-30 calendar days: answers land either side of it
        answered = filed_at + _ms(draw, 40)
        add("answered", answered)
    if draw(st.booleans()):
        add("published", (answered or filed_at) + _ms(draw, 10))
    for _ in range(draw(st.integers(0, 2))):
        add(
            "rated",
            filed_at + _ms(draw, 45),
            rating=draw(st.sampled_from(("satisfied", "neutral", "unsatisfied"))),
        )
    return evs


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    n_agencies = draw(st.integers(2, 4))
    events: list[Ev] = []
    numbers = [0] * n_agencies
    focus = draw(st.one_of(st.sampled_from(FOCUS_DAYS), st.integers(0, SPAN_DAYS)))
    for _ in range(draw(st.integers(1, 10))):
        a = draw(st.integers(0, n_agencies - 1))
        events += draw(dossier(a, numbers[a], focus))
        numbers[a] += 1
    for n in range(draw(st.integers(0, 5))):
        events += draw(feedback_item(draw(st.integers(0, n_agencies - 1)), n, focus))
    n_batches = draw(st.integers(2, 4))
    batch_of = tuple(draw(st.integers(0, n_batches - 1)) for _ in events)
    duplicates: tuple[tuple[int, int], ...] = ()
    if events:
        dup_events = draw(st.lists(st.integers(0, len(events) - 1), max_size=6))
        duplicates = tuple(
            # the copy goes into the same batch or any other, earlier or later
            (i, batch_of[i] if draw(st.booleans()) else draw(st.integers(0, n_batches - 1)))
            for i in dup_events
        )
    return Stream(
        n_agencies=n_agencies,
        events=tuple(events),
        batch_of=batch_of,
        duplicates=duplicates,
        n_batches=n_batches,
        catch_up_after=tuple(draw(st.lists(st.booleans(), min_size=n_batches, max_size=n_batches))),
        shuffle_seed=draw(st.integers(0, 2**32 - 1)),
    )


# --- the questions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    kind: str  # "metric" | "ii06a" | "leaf"
    metric_id: str
    rule_set: str
    # (day | month | quarter | range | span, start day, length in days, an event whose day the
    # period holds: most periods hold some of the stream; a span holds all of it)
    period: tuple[str, int, int, int | None]
    now: tuple[str, int]  # (inside | after | end | due, a number to place it)
    # None: live; (k, False): an instant between batch k and the next; (k, True): exactly the
    # newest ingested_at after batch k (the watermark an answer's provenance reports)
    as_of: tuple[int, bool] | None
    scope: tuple[str, tuple[int, ...]]  # (mine | subset | all, agency indexes of a subset)
    domains: tuple[int, ...]
    levels: tuple[str, ...]
    group_by: str | None
    eligible: tuple[str, ...]


@st.composite
def questions(draw: st.DrawFn, n_agencies: int, n_batches: int) -> Question:
    scope = draw(st.sampled_from(("mine", "mine", "subset", "all")))
    subset = tuple(
        draw(st.lists(st.integers(0, n_agencies - 1), min_size=1, max_size=n_agencies, unique=True))
    )
    # a domain or a level filter in one question of four each, so that most questions see items
    domains: tuple[int, ...] = ()
    if one_in(draw, 4):
        domains = tuple(sorted(draw(st.sets(st.integers(0, len(DOMAINS) - 1), min_size=1))))
    levels: tuple[str, ...] = ()
    if one_in(draw, 4):
        levels = tuple(sorted(draw(st.sets(st.sampled_from(LEVELS), min_size=1, max_size=2))))
    return Question(
        kind=draw(st.sampled_from(("metric", "metric", "metric", "ii06a", "leaf"))),
        metric_id=draw(st.sampled_from(METRIC_IDS)),
        rule_set=draw(st.sampled_from(RULE_SETS)),
        period=(
            draw(
                st.sampled_from(
                    ("month", "range", "span", "day", "month", "quarter", "range", "span")
                )
            ),
            draw(st.integers(-10, SPAN_DAYS)),
            draw(st.integers(0, 75)),
            None if one_in(draw, 5) else draw(st.integers(0, 10**6)),
        ),
        now=(
            draw(st.sampled_from(("after", "inside", "end", "due", "after"))),
            draw(st.integers(0, 10**9)),
        ),
        as_of=draw(st.one_of(st.none(), st.tuples(st.integers(0, n_batches - 1), st.booleans()))),
        scope=(scope, subset),
        domains=domains,
        levels=levels,
        group_by=draw(st.sampled_from(GROUP_BYS)),
        eligible=tuple(sorted(draw(st.sets(st.sampled_from(PROCEDURES))))),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[Stream, list[Question]]:
    stream = draw(streams())
    # First a census: the index's leaf counts over the whole window judge every item on most
    # of its folded fields at once, so a wrong fold of any one item rarely goes unseen.
    census = replace(
        draw(questions(stream.n_agencies, stream.n_batches)),
        kind="leaf",
        period=("span", 0, 0, None),
        now=("after", 0),
        scope=("mine", ()),
    )
    asked = draw(st.lists(questions(stream.n_agencies, stream.n_batches), min_size=2, max_size=4))
    return stream, [census, *asked]


def describe(stream: Stream) -> str:
    """The stream as text, one event a line, for a failing example's report."""
    lines = [f"{stream.n_agencies} agencies; catch_up after batches {stream.catch_up_after}"]
    for i, ev in enumerate(stream.events):
        again = [b for j, b in stream.duplicates if j == i]
        fields = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in ev.fields.items()}
        lines.append(
            f"  #{i} batch {stream.batch_of[i]}{f' again in {again}' if again else ''}: "
            f"{ev.kind} agency {ev.agency} {ev.entity_id} at {ev.at.isoformat()} {fields or ''}"
        )
    return "\n".join(lines)


# --- writing a stream as the ingest does ---------------------------------------------------------


@dataclass
class Stored:
    agencies: list[str]
    run: str
    instants: list[datetime]  # after each batch, before the next one
    watermarks: list[datetime]  # the newest ingested_at of ours after each batch
    dues: list[datetime]  # every due date in the stream: instants where a dossier turns late
    days: list[date]  # the local day of every event


def payload(ev: Ev, agencies: list[str], run: str) -> dict[str, Any]:
    fields = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in ev.fields.items()}
    if "domain_code" in fields:  # run-unique domains keep an unscoped domain filter to ours
        fields["domain_code"] = f"{DOMAINS[fields['domain_code']]}_{run}"
    entity, kind = ev.kind.split(".")
    build = dossier_event if entity == "dossier" else feedback_event
    return build(kind, agencies[ev.agency], ev.entity_id, ev.at, **fields)


def store(client: Client, stream: Stream) -> Stored:
    run = uuid.uuid4().hex[:8].upper()
    agencies = [f"Q{i}{run}" for i in range(stream.n_agencies)]
    payloads = [payload(ev, agencies, run) for ev in stream.events]
    batches: list[list[dict[str, Any]]] = [[] for _ in range(stream.n_batches)]
    for p, b in zip(payloads, stream.batch_of, strict=True):
        batches[b].append(p)
    for i, b in stream.duplicates:
        batches[b].append(payloads[i])
    shuffle = random.Random(stream.shuffle_seed)
    writer = EventWriter(client)
    instants: list[datetime] = []
    watermarks: list[datetime] = []
    seen: set[str] = set()
    for b, batch in enumerate(batches):
        shuffle.shuffle(batch)
        rows = []
        for p in batch:
            meta = MessageMeta(f"motcua.events.{p['agency_code']}.{p['type']}", next(_SEQ), now())
            row = process(json.dumps(p).encode(), meta)
            assert isinstance(row, EventRow), row
            rows.append(row)
        result = writer.write(rows, [])
        assert result.stored == len(rows) and not result.rejected
        # ingested_at is the engine's now64(3) at the insert: a few ms either side of the
        # recorded instant keep every as-of instant strictly between two batches
        time.sleep(0.003)
        instants.append(now())
        time.sleep(0.003)
        if stream.catch_up_after[b]:
            catch_up(client)
        seen |= {p["event_id"] for p in batch}
        # the harness itself: the instant splits the log where it should
        count, watermark = stored_by(client, agencies, instants[-1])
        assert count == len(seen)
        watermarks.append(watermark or instants[-1])
    dues = [
        datetime.fromisoformat(p[k]) for p in payloads for k in ("due_at", "new_due_at") if k in p
    ]
    days = sorted({ev.at.astimezone(VN).date() for ev in stream.events})
    return Stored(agencies, run, instants, watermarks, sorted(dues), days)


def now() -> datetime:
    return datetime.now(UTC)


def stored_by(client: Client, agencies: list[str], as_of: datetime) -> tuple[int, datetime | None]:
    """How many of our events were stored by `as_of`, and the newest ingested_at among them."""
    count, newest = client.query(
        "SELECT uniqExact(event_id), max(ingested_at) FROM events "
        "WHERE agency_code IN {a:Array(String)} AND ingested_at <= {t:DateTime64(3, 'UTC')}",
        parameters={"a": agencies, "t": as_of},
    ).result_rows[0]
    if not count:
        return 0, None
    return int(count), newest if newest.tzinfo else newest.replace(tzinfo=UTC)


# --- asking both ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """One question as both sides are asked it."""

    kind: str  # "metric" | "ii06a" | "leaf"
    period: Period
    now: datetime
    as_of: datetime | None
    rule_set: str
    agencies: tuple[str, ...]  # (): the whole store, of which only our agencies are compared
    metric_id: str = ""
    domains: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    group_by: str | None = None
    eligible: tuple[str, ...] = ()


def check(client: Client, a: Asked, mine: set[str]) -> bool:
    """Ask the fast path and the oracle; they must agree exactly. Whether anything was counted."""
    rule_set = rules.get(a.rule_set)
    if a.kind == "ii06a":
        report = report_ii06a.compute(client, a.period, a.now, a.agencies, a.as_of, rule_set)
        got = [r.as_dict() for r in report.rows if r.agency_code in mine]
        want = [
            r
            for r in reference_fold.ii06a(client, a.period, a.now, a.agencies, a.as_of, rule_set)
            if r["agency_code"] in mine
        ]
        events = sum(r.pop("events") for r in want)
        assert got == want, a
        if a.agencies:  # the whole store's total holds other tests' events too
            assert report.events == events, a
        return any(v for r in want for k, v in r.items() if k != "agency_code")
    if a.kind == "leaf":
        fast = index766.leaf_counts(
            client, a.period, a.now, a.agencies, as_of=a.as_of, rule_set=rule_set
        )
        oracle = reference_fold.leaf_counts(
            client, a.period, a.now, a.agencies, as_of=a.as_of, rule_set=rule_set
        )
        assert _leaves(fast, mine) == _leaves(oracle, mine), a
        return bool(_leaves(oracle, mine))
    filters = Filters(agencies=a.agencies, domains=a.domains, levels=a.levels)
    query = metric_query(
        a.metric_id,
        period=a.period,
        now=a.now,
        filters=filters,
        group_by=a.group_by,
        rule_set=rule_set,
        as_of=a.as_of,
        full_online_eligible=a.eligible,
    )
    rows = query.run(client)
    if query.metric.anchor is not None and a.group_by in (None, "agency") and a.agencies:
        # the page's read: the same figure and its months from one query's (group, month) cells
        grouped, monthly = query.run_with_months(client)
        assert grouped == rows, a
        assert [(r.group, r.numerator, r.denominator, r.events) for r in monthly] == (
            reference_fold.metric(
                client,
                a.metric_id,
                a.period,
                a.now,
                filters,
                "month",
                a.as_of,
                rule_set,
                a.eligible,
                with_events=True,
            )
        ), a
    got_rows = [(r.group, r.numerator, r.denominator, r.events) for r in rows]
    want_rows = reference_fold.metric(
        client,
        a.metric_id,
        a.period,
        a.now,
        filters,
        a.group_by,
        a.as_of,
        rule_set,
        a.eligible,
        with_events=True,
    )
    if not a.agencies:  # the whole store: keep to our agencies' rows (see materialize)
        got_rows = [r for r in got_rows if a.group_by != "agency" or r[0] in mine]
        want_rows = [r for r in want_rows if a.group_by != "agency" or r[0] in mine]
    assert got_rows == want_rows, a
    return any(row[2] for row in want_rows)


def _leaves(
    leaves: dict[str, tuple[dict[str, Any], dict[str, Any]]], mine: set[str]
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Leaf counts to compare: ours only, procedure sets sorted, without the watermark and the
    agency code (the key already). A count of 0 and a count left out are the same to the index
    (index766._counts reads them with a default), so neither side is held to one of them."""

    def plain(counts: dict[str, Any]) -> dict[str, Any]:
        out = {
            k: sorted(v) if isinstance(v, list) else int(v)
            for k, v in counts.items()
            if k not in LEAF_PROVENANCE and k != "agency_code"
        }
        return {k: v for k, v in out.items() if v}

    both = {a: (plain(d), plain(f)) for a, (d, f) in leaves.items() if a in mine}
    return {a: counts for a, counts in both.items() if counts != ({}, {})}


def materialize(q: Question, stored: Stored) -> Asked:
    period = period_of(q.period, stored.days)
    as_of = None
    if q.as_of is not None:
        k, exact = q.as_of
        as_of = stored.watermarks[k] if exact else stored.instants[k]
    scope, subset = q.scope
    agencies = {
        "mine": tuple(stored.agencies),
        "subset": tuple(stored.agencies[i] for i in sorted(subset)),
        "all": (),
    }[scope]
    base = Asked(q.kind, period, now_of(q.now, period, stored.dues), as_of, q.rule_set, agencies)
    if q.kind != "metric":
        return base
    group_by = q.group_by
    domains = tuple(f"{DOMAINS[i]}_{stored.run}" for i in q.domains)
    levels = q.levels
    if reference_fold.METRICS[q.metric_id].entity == "feedback":
        # feedback has neither domain nor level; the whole store is kept to ours by agency rows
        domains, levels = (), ()
        group_by = None if group_by in ("domain", "level") else group_by
        if scope == "all":
            group_by = "agency"
    elif scope == "all" and group_by != "agency":
        # other tests' dossiers would be summed in: our domains are ours alone
        domains = domains or tuple(f"{d}_{stored.run}" for d in DOMAINS)
    return replace(
        base,
        metric_id=q.metric_id,
        domains=domains,
        levels=levels,
        group_by=group_by,
        eligible=q.eligible,
    )


def period_of(spec: tuple[str, int, int, int | None], days: list[date]) -> Period:
    kind, start, length, around = spec
    if kind == "span":  # the whole window: every item of the stream is judged
        return Period.from_dates(BASE.date() - timedelta(days=45), LAST_EVENT_DAY)
    pivot = BASE.date() + timedelta(days=start)
    if around is not None and days:
        pivot = days[around % len(days)]
    if kind == "day":
        return Period.from_dates(pivot, pivot)
    if kind == "range":
        first = pivot - timedelta(days=length // 3)
        return Period.from_dates(first, first + timedelta(days=length))
    if kind == "month":
        first = pivot.replace(day=1)
        return Period.from_dates(first, _month_after(first) - timedelta(days=1))
    q = date(pivot.year, (pivot.month - 1) // 3 * 3 + 1, 1)
    return Period.from_dates(q, _month_after(_month_after(_month_after(q))) - timedelta(days=1))


def _month_after(d: date) -> date:
    return (d.replace(day=1) + timedelta(days=32)).replace(day=1)


def now_of(spec: tuple[str, int], period: Period, dues: list[datetime]) -> datetime:
    kind, n = spec
    length_ms = int((period.end - period.start).total_seconds() * 1000)
    if kind == "inside":
        return period.start + timedelta(milliseconds=n % length_ms)
    if kind == "after":
        return period.end + timedelta(milliseconds=n % (60 * MS_DAY))
    near = [d for d in dues if period.start <= d <= period.end + timedelta(days=60)]
    if kind == "due" and near:
        # the instant a dossier turns overdue, and 1 ms either side of it
        return near[n % len(near)] + timedelta(milliseconds=n % 3 - 1)
    return period.end


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_fast_figures_equal_a_plain_fold_of_the_raw_events(
    frozen_log: Client, readers: Client, case: tuple[Stream, list[Question]]
) -> None:
    # Catches: any figure of the fast path (facts + delta, or whatever serves it) that differs
    # from folding the raw log at as_of under eeced79's rules; see the module docstring.
    stream, asked = case
    note(describe(stream))  # this hypothesis build prints the example's arguments empty
    stored = store(frozen_log, stream)
    questions = [materialize(q, stored) for q in asked]
    # side by side, as the API asks them; the first failure is raised here
    counted = run_all(
        readers, [lambda a=a: check(readers, a, set(stored.agencies)) for a in questions]
    )
    for a, anything in zip(questions, counted, strict=True):
        # how often questions count anything at all: --hypothesis-show-statistics
        event(f"{a.kind}: {'counted' if anything else 'nothing counted'}")


# --- one explicit stream: every event type, duplicates, late arrivals, facts and delta ----------


def vn(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=VN)


def receipt_of(
    agency: int, did: str, at: datetime, due: datetime, channel: str, domain: int, level: str
) -> Ev:
    fields = {
        "procedure_code": PROCEDURES[domain],
        "domain_code": domain,
        "level": level,
        "channel": channel,
        "received_at": at,
        "due_at": due,
        "fee_required": True,
        "paper_result_required": domain == 0,
    }
    return Ev("dossier.received", agency, did, at, fields)


def regression_stream() -> Stream:
    A, B = 0, 1  # the two agencies, as the comments name them
    batches: list[list[Ev]] = [
        [
            # A/D1: online, due Fri 6/3 17:00, paused 3/3-5/3 (the resumption arrives in batch 2)
            receipt_of(A, "D1", vn(2), vn(6, 17), "online", 0, "province"),
            Ev("dossier.supplement_requested", A, "D1", vn(3, 10)),
            Ev("dossier.resolved", A, "D1", vn(8), {"outcome": "approved", "e_result": True}),
            # B/D3's resolution arrives two batches before its receipt
            Ev("dossier.resolved", B, "D3", vn(15), {"outcome": "rejected", "e_result": False}),
            # A/D2: carried over from February, two supplement requests (late by rule)
            receipt_of(A, "D2", vn(25, month=2), vn(3, 17), "direct", 1, "district"),
            Ev("dossier.supplement_requested", A, "D2", vn(26, month=2)),
            Ev("dossier.supplement_requested", A, "D2", vn(27, month=2)),
            # B/D1: the same dossier id under another agency; postal, open past the month
            receipt_of(B, "D1", vn(10), vn(3, 17, month=4), "postal", 0, "commune"),
            Ev("feedback.filed", A, "F1", vn(2), _filed(vn(2), vn(23, 17))),
            # B/F1: filed before Tết; 15 working days end on Tue 10/3
            Ev("feedback.filed", B, "F1", vn(10, month=2), _filed(vn(10, month=2), vn(3, 17))),
        ],
        [
            Ev("dossier.paid", A, "D1", vn(2, 10), {"channel": "online", "amount_vnd": 50_000}),
            Ev("dossier.digitized", A, "D1", vn(2, 11)),
            Ev("dossier.apology_issued", A, "D1", vn(5, 10), {"new_due_at": vn(12, 17)}),
            Ev("dossier.returned", A, "D1", vn(9)),
            Ev("dossier.supplement_received", A, "D2", vn(28, month=2)),
            Ev("dossier.late", A, "D2", vn(4, 0)),
            Ev("dossier.paid", B, "D1", vn(11), {"channel": "offline", "amount_vnd": 1_500_000}),
            Ev("dossier.paid", B, "D1", vn(12), {"channel": "online", "amount_vnd": 50_000}),
            Ev("dossier.apology_issued", B, "D1", vn(25), {"new_due_at": vn(10, 17, month=4)}),
            Ev("dossier.apology_issued", B, "D1", vn(27), {"new_due_at": vn(17, 17, month=4)}),
            Ev("feedback.answered", A, "F1", vn(5)),
            Ev("feedback.published", A, "F1", vn(6)),
            Ev("feedback.filed", B, "F2", vn(28), _filed(vn(28), vn(17, 17, month=4))),
        ],
        [
            # days late, and never folded into facts (no catch-up after this batch)
            Ev("dossier.supplement_received", A, "D1", vn(5, 10)),
            receipt_of(B, "D3", vn(12), vn(16, 0), "online", 2, "province"),
            Ev("dossier.withdrawn", A, "D2", vn(20)),
            Ev("dossier.rated", A, "D1", vn(10), {"rating": "unsatisfied"}),
            Ev("feedback.rated", A, "F1", vn(7), {"rating": "unsatisfied"}),
            Ev("feedback.answered", B, "F1", vn(11, 15)),
        ],
    ]
    events = tuple(ev for batch in batches for ev in batch)
    batch_of = tuple(b for b, batch in enumerate(batches) for _ in batch)
    index = {(ev.kind, ev.agency, ev.entity_id, ev.at): i for i, ev in enumerate(events)}
    duplicates = (
        (index[("dossier.received", A, "D1", vn(2))], 0),  # twice in one insert
        (index[("dossier.resolved", A, "D1", vn(8))], 1),  # in facts and again later
        (index[("feedback.filed", B, "F1", vn(10, month=2))], 2),  # in facts and in the delta
        (index[("dossier.paid", B, "D1", vn(12))], 2),
    )
    return Stream(2, events, batch_of, duplicates, 3, (True, True, False), shuffle_seed=7)


def _filed(at: datetime, due: datetime) -> dict[str, Any]:
    return {"filed_at": at, "topic": "procedure", "due_at": due}


def test_one_stream_with_every_event_type(frozen_log: Client) -> None:
    # Catches, on a stream one can follow by hand: a late supplement resumption that does not
    # move a dossier folded earlier from early to on time, a duplicate counted twice across the
    # facts and the delta, a receipt arriving after its resolution left out, an as-of answer
    # that sees later batches, a domain or level filter that loses an item's later events; and
    # every figure, II.06a and leaf count on it against the oracle.
    stored = store(frozen_log, regression_stream())
    a, b = stored.agencies
    mine = set(stored.agencies)
    march = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31))
    after = vn(1, 12, month=4)
    reference = rules.get("reference@1")

    def ii06a_columns(as_of: datetime | None) -> list[list[int]]:
        rows = reference_fold.ii06a(frozen_log, march, after, (a, b), as_of, reference)
        return [[v for k, v in r.items() if k not in ("agency_code", "events")] for r in rows]

    # columns 3..13. Everything: A/D1 on time (paused 2 days: 6/3 09:00 ≤ 6/3 17:00), A/D2
    # carried over and late (two requests), withdrawn in March; B/D3 early, B/D1 still in time.
    assert ii06a_columns(None) == [
        [2, 1, 0, 1, 2, 0, 1, 1, 0, 0, 0],
        [2, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0],
    ]
    # As of batch 2: A/D1's resumption not yet stored, so its clock stopped on 3/3 (early);
    # A/D2 not withdrawn yet (open, overdue); B/D3 has no receipt yet (not in the report).
    assert ii06a_columns(stored.watermarks[1]) == [
        [2, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1],
        [1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0],
    ]
    as_ofs = [None, stored.instants[0], stored.watermarks[1], stored.instants[1]]
    due_d1 = vn(6, 17)
    asked = [
        # the two hand-computed reports, from the fast path
        Asked("ii06a", march, after, None, "reference@1", (a, b)),
        Asked("ii06a", march, after, stored.watermarks[1], "reference@1", (a, b)),
        Asked("leaf", march, after, None, "reference@1", (a, b)),
        Asked("ii06a", march, due_d1, stored.watermarks[0], "lenient-boundary@1", ()),
        Asked(
            "leaf",
            march,
            due_d1 + timedelta(milliseconds=1),
            stored.instants[1],
            "reference@1",
            (a,),
        ),
        Asked(
            "leaf",
            Period.from_dates(date(2026, 1, 1), date(2026, 3, 31)),
            after,
            stored.watermarks[1],
            "lenient-boundary@1",
            (),
        ),
        Asked(
            "ii06a",
            Period.from_dates(date(2026, 2, 27), date(2026, 3, 2)),
            after,
            None,
            "lenient-boundary@1",
            (b,),
        ),
    ]
    # Filters on a dossier's own columns: its later events (a resumption, a withdrawal, stored
    # after the last catch-up) carry no domain or level, yet must still reach its figures.
    dat_dai = f"{DOMAINS[0]}_{stored.run}"
    asked += [
        Asked("metric", march, after, None, "reference@1", (a, b), "early_rate", (dat_dai,)),
        Asked("metric", march, after, None, "reference@1", (), "on_time_rate", (dat_dai,)),
        Asked(
            "metric",
            march,
            after,
            None,
            "reference@1",
            (a,),
            "open_overdue_rate",
            (),
            ("district",),
        ),
    ]
    # A/D2 is late only by its second supplement request (its clock stopped on 27/2, before
    # its due date): in apology compliance's population under reference@1, out of it from
    # reference@2, whose population is the missed due dates; open until 20/3, so before then
    # also in the leading indicator's population from reference@2 only.
    ref2 = rules.get("reference@2")
    for rule_set, want in ((reference, [(None, 0, 1)]), (ref2, [])):
        got = reference_fold.metric(
            frozen_log, "apology_compliance", march, after, Filters((a, b)), None, None, rule_set
        )
        assert got == want, rule_set.id
    before_withdrawal = vn(18, 12)
    for rule_set_id in ("reference@1", "reference@2", "lenient-boundary@2"):
        asked += [
            Asked("metric", march, after, None, rule_set_id, (a, b), "apology_compliance"),
            Asked(
                "metric",
                march,
                before_withdrawal,
                stored.watermarks[1],
                rule_set_id,
                (a,),
                "apology_compliance",
                group_by="day",
            ),
            Asked(
                "metric",
                march,
                before_withdrawal,
                None,
                rule_set_id,
                (a, b),
                "due_soon_without_apology",
                group_by="agency",
            ),
        ]
    for i, metric_id in enumerate(METRIC_IDS):
        feedback = reference_fold.METRICS[metric_id].entity == "feedback"
        group_by = GROUP_BYS[i % len(GROUP_BYS)]
        if feedback and group_by in ("domain", "level"):
            group_by = "agency"
        asked.append(
            Asked(
                "metric",
                march,
                after if i % 3 else due_d1,
                as_ofs[i % 4],
                RULE_SETS[i % len(RULE_SETS)],
                (a, b),
                metric_id,
                group_by=group_by,
                eligible=PROCEDURES[:2],
            )
        )
    counted = [check(frozen_log, q, mine) for q in asked]
    assert sum(counted) >= len(asked) * 2 // 3  # the example exercises the figures
