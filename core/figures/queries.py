"""Named, parameterized SQL for the metric catalogue. User input only ever travels as parameters."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, Literal, TypeVar

from clickhouse_connect.driver.client import Client

from core.figures import days, facts, rules
from core.figures.definitions import METRICS, Entity, Metric, Reads
from core.figures.rules import RuleSet
from core.reference.calendar import WorkingCalendar
from core.zone import TZ, VN

GroupBy = Literal["agency", "domain", "level", "day", "month"]
# The days and instants a query can name: ClickHouse's DateTime64(3) range, a day inside each end.
FIRST_DAY, LAST_DAY = date(1900, 1, 2), date(2299, 12, 30)
FIRST_INSTANT = datetime(1900, 1, 2, tzinfo=UTC)
LAST_INSTANT = datetime(2299, 12, 30, tzinfo=UTC)


_DT = "DateTime64(3, 'UTC')"

# One judging instant, the judged_at parameter: a constant column (an ARRAY JOIN of one element
# would copy every row and its arrays).
SINGLE_T = ""

# What a figure reads of each dossier: its facts (core/figures/facts.py), with `sign` to sum
# instead of counting rows, and `t`, the instant it is judged at.
_DOSSIER_COLUMNS = (
    "agency_code, dossier_id, procedure_code, domain_code, level, channel, received_at, due_at, "
    "fee_required, paper_result_required, e_result, resolved_at, returned_at, withdrawn_at, "
    "end_at, supplement_requests, supplement_receipts, end_requests, end_effective_at, "
    "end_late, end_late_day, end_early_day, "
    "late_notice_at, apologies, first_apology_at, paid_at, paid_online, paid_amount, "
    "digitized_at, last_rating, event_count, valid_from AS last_ingested_at"
)
_FEEDBACK_COLUMNS = (
    "agency_code, feedback_id, topic, filed_at, due_at, answered_at, published_at, last_rating, "
    "event_count, valid_from AS last_ingested_at"
)

# Working days of the loaded calendar years as data, two tables of fixed-width numbers in string
# parameters (_calendar_params), read per row with a substring: `cal_running`, entry i the number
# of working days among the calendar's first i days (entry 0 is 0), and `cal_wd`, entry k the
# position (1-based, from cal_base) of the k-th working day (entry 0 unused). So the first working
# day on or after d is one lookup, never a scan per row, and a day past the calendar yields NULL,
# never a guess. Not arrays: an array parameter of 2,000 dates cost ~4 ms to parse per use, and
# arrays built from a string of day flags by lambdas were folded again for every use of a column
# that read them (the feedback figure planned in 28 ms with them, in 16 without any calendar).
_WIDTH = 5  # digits per entry: 99,999 days


def _entry(table: str, index: str) -> str:
    """Entry `index` (0-based) of one of the calendar's tables; 0 past its end."""
    return f"toUInt32OrZero(substring({{{table}:String}}, {_WIDTH} * ({index}) + 1, {_WIDTH}))"


def _first_index(day: str) -> str:
    """1-based index in the working days of the first working day on or after `day`; 0: none."""
    offset = f"dateDiff('day', {{cal_base:Date}}, {day})"
    return (
        f"multiIf({day} < {{cal_base:Date}}, 1, "
        f"{day} > addDays({{cal_base:Date}}, {{cal_days:UInt32}} - 1), 0, "
        f"{_entry('cal_running', offset)} + 1)"
    )


def _working_day(day: str, first: str, offset: str) -> str:
    """The working day `offset` places after the one at index `first` (a _first_index column of
    `day`); NULL when the calendar does not reach that far or `day` is NULL."""
    return (
        f"if({day} IS NULL OR {first} = 0 OR {first} + ({offset}) NOT BETWEEN 1 "
        "AND {cal_working:UInt32}, NULL, "
        f"addDays({{cal_base:Date}}, {_entry('cal_wd', f'{first} + ({offset})')} - 1))"
    )


# The §2 judgment of a dossier finished before `t`: made from its end, when its facts were
# folded (the day comparisons included), under the rule parameters.
END_TIMELINESS = (
    "multiIf(toUInt64(end_requests) > 1 AND {multi_supplement_late:UInt8} = 1, 'late', "
    "if({lenient_boundary:UInt8} = 1, end_late_day, end_late), 'late', "
    "end_early_day, 'early', 'on_time')"
)


def open_clock(t: str) -> str:
    """SELECT-list items judging a dossier still open at `t` (a column or a parameter) from its
    supplement times, reference §2: `open_requests` made by `t`, and `open_clock`, the instant its
    clock shows at `t`. The clock runs to `t`, less the completed pauses (the k-th request pairs
    with the k-th resubmission), or stops at a pending request."""
    return f"""length(arrayFilter(x -> x <= {t}, supplement_requests)) AS open_requests,
    least(open_requests, length(arrayFilter(x -> x <= {t}, supplement_receipts)))
        AS open_resumed,
    if(open_requests = 0, {t},
       subtractMilliseconds(
           if(open_requests > open_resumed, supplement_requests[open_resumed + 1], {t}),
           arraySum(arrayMap(i -> greatest(0, dateDiff('millisecond', supplement_requests[i],
                                                       supplement_receipts[i])),
                             range(1, open_resumed + 1))))) AS open_clock"""


# Whether a dossier open at `t` (the open_clock columns) is overdue there: a second supplement
# request when the rules make that late, or its clock past the due date (by the day, leniently).
OPEN_LATE = (
    "(open_requests > 1 AND {multi_supplement_late:UInt8} = 1 "
    "OR if({lenient_boundary:UInt8} = 1, "
    f"toDate(open_clock, '{TZ}') > toDate(due_at, '{TZ}'), open_clock > due_at))"
)

# The §2 judgment at `t`: a dossier finished before `t` judged at its end, one still open at `t`
# judged at `t`.
_DOSSIER_JUDGED = f"""
    end_at IS NOT NULL AND end_at < t AS finished_by_t,
    if(finished_by_t, end_at, t) AS judged_at,
    {open_clock("t")},
    if(finished_by_t, toUInt64(end_requests), open_requests) AS requests,
    if(finished_by_t, end_effective_at, open_clock) AS effective_at,
    multiIf(due_at IS NULL, NULL,
            finished_by_t, {END_TIMELINESS},
            {OPEN_LATE}, 'late',
            toDate(effective_at, '{TZ}') < toDate(due_at, '{TZ}'), 'early',
            'on_time') AS timeliness"""

# The same judgment of a population that finished before `t` (Metric.finished_only): the
# open-dossier clock above is never read there, and planning it was most of such a figure's cost.
_FINISHED_JUDGED = f"""
    toUInt8(1) AS finished_by_t,
    end_at AS judged_at,
    toUInt64(end_requests) AS requests,
    end_effective_at AS effective_at,
    if(due_at IS NULL, NULL, {END_TIMELINESS}) AS timeliness"""

# What only the apology figures read: planning these columns is most of a query's fixed cost.
_APOLOGY_JUDGED = f"""
    -- Apology (KH 7860 B.4.1): issued no later than N (working) days before the original due
    -- date; more reschedules than the rule allows is a violation.
    toDate(due_at, '{TZ}') AS due_day,
    {_first_index("due_day")} AS due_first,
    if({{apology_unit_working:UInt8}} = 1,
       {_working_day("due_day", "due_first", "-{apology_days_before_due:Int32}")},
       subtractDays(due_day, {{apology_days_before_due:Int32}})) AS apology_deadline_day,
    apologies >= 1 AND apologies <= {{max_reschedules:UInt8}}
        AND toDate(first_apology_at, '{TZ}') <= apology_deadline_day AS apology_ok,
    -- The original due date missed (reference §2, the apology population of rule sets from
    -- reference@2): the clock, at the end or at `t` for an open dossier, past due_at by the
    -- rule set's boundary; the §2 lateness without the second-supplement rule.
    if({{lenient_boundary:UInt8}} = 1, toDate(effective_at, '{TZ}') > toDate(due_at, '{TZ}'),
       effective_at > due_at) AS due_missed,
    -- The leading indicator's horizon: the N-th working day after the judging day.
    toDate(subtractMilliseconds(t, 1), '{TZ}') AS t_day,
    {_first_index("addDays(t_day, 1)")} AS horizon_first,
    {_working_day("t_day", "horizon_first", "{leading_working_days:Int32} - 1")} AS horizon_day"""

_FEEDBACK_JUDGED = f"""
    toDate(filed_at, '{TZ}') AS filed_day,
    {_first_index("addDays(filed_day, 1)")} AS filed_first,
    -- Reference §5: answer within N working days of filing (holidays skipped); a rule set may
    -- trust the source system's due_at instead.
    if({{feedback_deadline_source:UInt8}} = 1, toDate(due_at, '{TZ}'),
       {_working_day("filed_day", "filed_first", "{feedback_working_days:Int32} - 1")})
       AS deadline_day"""

# Which facts rows a question can touch: a finished dossier's current facts lie in the partition
# of the month of its last dated step (end, receipt, first payment, digitisation; open ones in
# OPEN_MONTH), so a question about dossiers finished, received or paid since some instant, or
# open at it, skips every month before it.


def part_month_of(instant: datetime) -> int:
    """The facts partition (part_month) of the UTC month holding `instant`."""
    utc = instant.astimezone(UTC)
    return utc.year * 100 + utc.month


def prune_clause(
    kind: Reads, start: datetime, end: datetime, t_min: datetime, start_param: str = "period_start"
) -> str:
    """A condition on facts rows that every row of the population meets (so it changes no
    answer) and that the engine can skip partitions and granules by. `t_min` is the earliest
    instant the figure is judged at, `end` the latest; `start_param` names the parameter that
    holds `start`."""
    since = f"{{{start_param}:{_DT}}}"
    if kind == "finished":
        return f"part_month >= {part_month_of(start):d} AND end_at >= {since}"
    if kind == "open":
        return f"part_month >= {part_month_of(min(t_min, end)):d}"
    if kind == "finished_or_open":
        return f"part_month >= {part_month_of(min(start, t_min)):d}"
    if kind == "received":
        return (
            f"part_month >= {part_month_of(start):d} AND received_at >= {since} "
            f"AND received_at < {{period_end:{_DT}}}"
        )
    if kind == "paid":
        return f"part_month >= {part_month_of(start):d} AND paid_at >= {since}"
    return (
        f"part_month >= {part_month_of(start):d} AND part_month <= {part_month_of(end):d} "
        f"AND filed_at >= {since} AND filed_at < {{period_end:{_DT}}}"
    )


@dataclass(frozen=True)
class Split:
    """Where the day counts (core/figures/days.py) end and the facts take over: `fresh`
    selects (and prunes to) the facts rows from the cut on, None when the figure is judged
    before it; `stale` is the anchor before the cut, whose rows of the delta's items the counts
    hold and the delta's fold replaces."""

    fresh: str | None
    stale: str
    # whether whole months lie in the counted days, read from the month counts, and whether
    # days lie around them (days.source)
    months: bool = False
    edges: bool = True


# How far the parts were folded and the facts have caught up, per entity, and the day counts'
# guard: one plain scan of each small table in one query. (Scalar subqueries, one per table,
# cost the engine more to plan than to run: 8-10 ms of every request at 10M, this 4.)
_PROGRESS_SQL = """
SELECT 'folded' AS kind, entity, max(folded_at) AS at, toUInt64(0) AS seq, toUInt8(0) AS dirty
FROM parts_progress GROUP BY entity
UNION ALL
SELECT 'caught_up', entity, max(watermark), 0, 0 FROM facts_progress GROUP BY entity
UNION ALL
SELECT 'guard', entity, toDateTime64(0, 3, 'UTC'), max(seq), argMax(dirty, seq)
FROM counts_guard WHERE entity = 'dossier' GROUP BY entity
"""


def _after(
    rows: dict[tuple[str, str], list[Any]], later: tuple[str, str], than: tuple[str, str]
) -> bool:
    """Whether the instant of row `later` is after that of row `than`, a missing row being the
    epoch (as max() of no rows is): an entity with nothing folded is not behind, and neither is
    one whose parts' view has seen only inserts without it (0021's views then write the epoch)."""
    if later not in rows:
        return False
    at = rows[later][0]
    return bool(at > (rows[than][0] if than in rows else datetime(1970, 1, 1, tzinfo=at.tzinfo)))


T = TypeVar("T")


@dataclass(frozen=True)
class Read:
    """How a question reads the store: live or as of an instant (the `as_of` parameter), and
    which entities have parts the refolder has not taken yet (`behind`), whose items are then
    folded from their parts. Read.of(client, as_of) asks the store."""

    as_of: bool = False
    behind: frozenset[Entity] = frozenset({"dossier", "feedback"})
    # Whether the day counts agree with the facts (not while a refolder write was cut short and
    # not yet reconciled: facts.counts_dirty_sql); if not, figures read the facts alone.
    counts: bool = True
    # The counts guard's newest mark when this was read (settled).
    counts_seq: int = 0

    @classmethod
    def of(cls, client: Client, as_of: datetime | None) -> Read:
        # Behind: a part folded after the refolder's watermark (parts_progress, migration
        # 0021). As of an instant, such a part may have been ingested after it; folding its
        # item from the parts up to that instant is then exact all the same.
        rows = {
            (kind, entity): row for kind, entity, *row in client.query(_PROGRESS_SQL).result_rows
        }
        behind = frozenset(
            e for e in facts.ENTITIES if _after(rows, ("folded", e), ("caught_up", e))
        )
        _, seq, dirty = rows.get(("guard", "dossier"), (None, 0, 0))
        return cls(as_of is not None, behind, counts=not dirty, counts_seq=int(seq))

    def settled(self, client: Client) -> bool:
        """Whether an answer read this way is exact: no refolder write began while it ran.

        A live question that reads the day counts and folds items from their parts also takes
        those items' stored facts away from the counts. One query does not read the tables at
        one instant: a refolder write landing between its read of the counts and its read of
        the facts takes an item away that the counts never held (the test of as-of answers saw
        three new dossiers vanish from a live figure once). The refolder marks the guard before
        it writes, so a changed mark means the answer must be asked again."""
        if self.as_of or not self.counts or "dossier" not in self.behind:
            return True
        seq = client.query(f"SELECT {facts.counts_seq_sql('dossier')}").result_rows[0][0]
        return int(seq) == self.counts_seq

    @classmethod
    def folded(cls, client: Client) -> Read:
        """The live facts alone, as far as the refolder has folded them: no delta (the metrics
        service's snapshots and plan evaluations, which run beside the refolder)."""
        dirty = client.query(f"SELECT {facts.counts_dirty_sql('dossier')}").result_rows[0][0]
        return cls(behind=frozenset(), counts=not dirty)


def consistently(
    client: Client, as_of: datetime | None, read: Read | None, ask: Callable[[Read], T]
) -> T:
    """`ask` under `read` (or Read.of), again while a refolder write overlapped it (settled);
    the third time from the facts alone, which need no agreement with the counts."""
    for _ in range(2):
        current = read or Read.of(client, as_of)
        answer = ask(current)
        if current.settled(client):
            return answer
        read = None
    return ask(replace(Read.of(client, as_of), counts=False))


def item_rows(
    entity: Entity,
    where: str,
    prune: str,
    read: Read,
    agencies: str = "1",
    split: Split | None = None,
) -> str:
    """One row per item version from the facts, plus the items the facts have not caught up
    with folded from their parts (core/figures/facts.py); sum `sign` instead of counting.

    `where` filters on the item's columns (agency, domain, level); `prune` limits what is read
    (prune_clause). As of an instant: the versions valid then and the parts ingested by then.
    `agencies` (a condition on agency_code alone) narrows which items are folded from their
    parts: nothing else may, since only the part holding the receipt has a domain or a level.
    With a `split`, only what the day counts do not hold: the facts from the cut on, and the
    correction for the delta's items (an empty string when there is nothing to read).
    """
    shape = facts.SHAPES[entity]
    columns = _DOSSIER_COLUMNS if entity == "dossier" else _FEEDBACK_COLUMNS
    at = f"{{as_of:{_DT}}}" if read.as_of else facts.CURRENT_SQL
    if read.as_of:
        # a superseded version lives in the partition of minus the month it ended
        valid = f"valid_from <= {at} AND valid_to > {at}"
        prune = f"({prune}) OR part_month <= -toYYYYMM({at})"
    else:
        valid = f"valid_to = {facts.CURRENT_SQL}"
    stored = f"SELECT {columns}, sign FROM {shape.facts} WHERE {valid} AND "
    current: str | None = f"{stored}({prune}) AND {where}"
    if split is not None:
        current = None if split.fresh is None else f"{stored}({split.fresh}) AND {where}"
    if entity not in read.behind:
        return current or ""
    delta = facts.delta_keys_sql(entity, at, agencies)
    key = f"(agency_code, {shape.key})"
    fold = facts.at_instant_sql(shape, f"{key} IN ({delta})", at)
    branches = [] if current is None else [f"{current} AND {key} NOT IN ({delta})"]
    if split is not None:
        # what the day counts hold of these items, taken away again
        branches.append(
            f"SELECT {columns}, -sign AS sign FROM {shape.facts} WHERE {valid} AND ({prune}) "
            f"AND {split.stale} AND {where} AND {key} IN ({delta})"
        )
    branches.append(
        f"SELECT {columns}, toInt8(1) AS sign FROM ({fold}) WHERE ({prune}) AND {where}"
    )
    return "\nUNION ALL\n".join(branches)


@dataclass(frozen=True)
class Layer:
    """What a question adds to item rows: SELECT-list items (which may use each other's
    aliases) and a condition on the rows and those items."""

    items: str = ""
    where: str = ""


def layered(rows: str, layers: Sequence[Layer], t_source: str = SINGLE_T) -> str:
    """The rows with every layer's items, where every layer's condition holds, in one SELECT.

    Each layer used to be a `SELECT *, ... FROM (...)` of its own. The engine's analyser
    resolves every column of every such level before it plans, and five of them cost more
    to plan than reading a day's facts (measured at 10M: the index's branch for the facts since
    the cut, 43 ms layered, 30 in one SELECT, p50 of 25). ClickHouse lets an item use an alias
    defined anywhere in the same list, so the layers' order does not matter for their items.
    `t_source`: an ARRAY JOIN of judging instants, or SINGLE_T."""
    items = "".join(f", {layer.items}" for layer in layers if layer.items)
    conditions = " AND ".join(f"({layer.where})" for layer in layers if layer.where)
    where = f" WHERE {conditions}" if conditions else ""
    return f"SELECT *{items} FROM ({rows}) {t_source}{where}"


def _with_t(t_source: str) -> Layer:
    """The period's bounds and the judging instant `t`: from `t_source` (an ARRAY JOIN of
    bucket ends), or the judged_at parameter (SINGLE_T)."""
    t = "t" if t_source else f"{{judged_at:{_DT}}} AS t"
    return Layer(f"{t}, {{period_start:{_DT}}} AS period_start, {{period_end:{_DT}}} AS period_end")


def _rows_with_t(rows: str, t_source: str) -> str:
    """The rows with the period's bounds and the judging instant `t` (_with_t)."""
    return layered(rows, [_with_t(t_source)], t_source)


@cache
def calendar() -> WorkingCalendar:
    """The shipped working-day calendar (core/reference/data/calendar)."""
    return WorkingCalendar.load()


@cache
def _calendar_params() -> dict[str, Any]:
    cal = calendar()
    days = [d for year in cal.years for d in cal.days(year)]
    working = [d.day for d in days if d.is_working]
    if not working:
        return {"cal_base": FIRST_DAY, "cal_days": 0, "cal_working": 0, "cal_running": "",
                "cal_wd": ""}  # fmt: skip
    flags = [d.is_working for d in days if d.day <= working[-1]]
    running = [0]
    for flag in flags:
        running.append(running[-1] + flag)
    positions = [0] + [i + 1 for i, flag in enumerate(flags) if flag]

    def table(numbers: list[int]) -> str:
        assert max(numbers) < 10**_WIDTH
        return "".join(f"{n:0{_WIDTH}d}" for n in numbers)

    return {
        "cal_base": days[0].day,
        "cal_days": len(flags),
        "cal_working": len(positions) - 1,
        "cal_running": table(running),
        "cal_wd": table(positions),
    }


def rule_params(rule_set: RuleSet) -> dict[str, Any]:
    """Every parameter the figure SQL reads from the rules and the calendar."""
    return {**rule_set.sql_params(), **_calendar_params()}


def used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters `sql` reads. Every parameter sent costs the engine its parsing, used or
    not: the calendar's tables (18 KB) cost ~2 ms on every query, a `SELECT 1` included."""
    return {k: v for k, v in params.items() if f"{{{k}:" in sql}


def scope_params(
    period: Period,
    now: datetime,
    agencies: tuple[str, ...],
    as_of: datetime | None,
    rule_set: RuleSet,
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause and parameters shared by whole-scope figures (reports, the index)."""
    params: dict[str, Any] = {
        "period_start": period.start,
        "period_end": period.end,
        "judged_at": min(period.end, now),
        **rule_params(rule_set),
    }
    where = "1"
    if agencies:
        where = "agency_code IN {agencies:Array(String)}"
        params["agencies"] = list(agencies)
    if as_of is not None:
        params["as_of"] = as_of
    return where, params


def judged_dossiers(
    where: str,
    t_source: str,
    *,
    read: Read,
    prune: str,
    agencies: str = "1",
    apology: bool = False,
    split: Split | None = None,
    finished: bool = False,
    then: Sequence[Layer] = (),
) -> str:
    """One row per dossier version (and judging instant `t`) with its §2 timeliness at `t`;
    sum `sign` instead of counting rows. `finished`: the caller keeps only rows finished
    before `t` (end_at < t), which are judged from their end columns alone. `then`: the
    caller's own layers, in the same SELECT (layered).

    Parameters the SQL expects: period_start, period_end, the rule parameters, the ones
    `t_source` names (e.g. judged_at), `as_of` when as_of is set, and those of `where`.
    """
    judged = [Layer(_FINISHED_JUDGED if finished else _DOSSIER_JUDGED)]
    if apology:
        judged.append(Layer(_APOLOGY_JUDGED))
    return plain_dossiers(
        where,
        t_source,
        read=read,
        prune=prune,
        agencies=agencies,
        split=split,
        then=[*judged, *then],
    )


def plain_dossiers(
    where: str,
    t_source: str,
    *,
    read: Read,
    prune: str,
    agencies: str = "1",
    split: Split | None = None,
    then: Sequence[Layer] = (),
) -> str:
    """judged_dossiers without the judgment, for counts that need none (intake, payments)."""
    rows = item_rows("dossier", where, prune, read, agencies, split)
    if not rows:
        return ""
    return layered(rows, [_COUNTED, _with_t(t_source), *then], t_source)


# Whether a dossier counts under the rule set: a rule set may leave withdrawn dossiers out of
# every dossier figure.
COUNTED = (
    "NOT ({withdrawn_finishes:UInt8} = 0 "
    "AND withdrawn_at IS NOT NULL AND resolved_at IS NULL AND returned_at IS NULL)"
)


_COUNTED = Layer(where=COUNTED)


def at_t_dossiers(
    where: str, *, read: Read, prune: str, agencies: str = "1", received_after: bool = False
) -> str:
    """The dossiers (with a due date) open at the judging instant `t` (the judged_at parameter),
    a row per dossier version, read, filtered and judged in one layer: `overdue` says whether
    one is late at `t` (§2, as the full judgment above decides it for an open dossier). Sum
    `sign` instead of counting rows.

    `received_after`: also the dossiers finished in the period but received after `t` (an
    integrator may date an end before its receipt), with `open` false and `end_timeliness`,
    their judgment at their end.

    The full judgment is written for any population and any number of instants `t`; planning
    its layers cost several times reading and judging a province's open dossiers."""
    rows = item_rows("dossier", where, prune, read, agencies)
    if not rows:
        return ""
    t = f"{{judged_at:{_DT}}}"
    population = f"received_at < {t} AND (end_at IS NULL OR end_at >= {t})"
    if received_after:
        population += (
            f" OR end_at >= {{period_start:{_DT}}} AND end_at < {t} AND received_at >= {t}"
        )
    return f"""
SELECT *, received_at < {t} AS open, {open_clock(t)},
    open AND {OPEN_LATE} AS overdue, {END_TIMELINESS} AS end_timeliness
FROM ({rows})
WHERE due_at IS NOT NULL AND ({population}) AND {COUNTED}
"""


def flow_facts(
    splits: dict[Reads, Split],
    where: str,
    *,
    read: Read,
    prunes: dict[Reads, str],
    then: Sequence[Layer] = (),
) -> str:
    """What several flows read of the facts beside their day counts, in one scan instead of
    one per flow (item_rows with a split, for each): the rows from the cut on, and for the
    delta's items their stored rows taken away again and their fold added. The rows are judged
    at their end (a flow keeps its finished ones only) and say by `side` which of the three they
    are, so that a flow keeps (flow_side) a row from the cut on only if its own anchor is from
    the cut on, and a taken-away row only if the day counts held it (its anchor before the cut).

    Live figures only (the day counts are never read as of an instant); `prunes`: each flow's
    prune_clause over the period; `then`: the caller's own layers (layered)."""
    shape = facts.SHAPES["dossier"]
    stored = (
        f"SELECT {_DOSSIER_COLUMNS}, {{sign}} AS sign, toInt8({{side}}) AS side "
        f"FROM {shape.facts} WHERE valid_to = {facts.CURRENT_SQL} AND "
    )
    fresh = " OR ".join(f"({s.fresh})" for s in splits.values() if s.fresh is not None)
    branches = []
    behind = "dossier" in read.behind
    delta = facts.delta_keys_sql("dossier", facts.CURRENT_SQL, where) if behind else ""
    key = f"(agency_code, {shape.key})"
    if fresh:
        mine = f" AND {key} NOT IN ({delta})" if behind else ""
        current = stored.format(sign="sign", side=0)
        branches.append(f"{current}({fresh}) AND {where}{mine}")
    if behind:
        held = " OR ".join(f"({prunes[k]}) AND {s.stale}" for k, s in splits.items())
        taken = stored.format(sign="-sign", side=-1)
        branches.append(f"{taken}({held}) AND {where} AND {key} IN ({delta})")
        fold = facts.at_instant_sql(shape, f"{key} IN ({delta})", facts.CURRENT_SQL)
        any_prune = " OR ".join(f"({prunes[k]})" for k in splits)
        branches.append(
            f"SELECT {_DOSSIER_COLUMNS}, toInt8(1) AS sign, toInt8(1) AS side FROM ({fold}) "
            f"WHERE ({any_prune}) AND {where}"
        )
    if not branches:
        return ""
    layers = [_COUNTED, _with_t(SINGLE_T), Layer(_FINISHED_JUDGED), *then]
    return layered("\nUNION ALL\n".join(branches), layers)


def flow_side(kind: Reads) -> str:
    """Whether a flow_facts row counts for the flow `kind` (see there)."""
    anchor = days.DAY_ANCHORS[kind]
    cut = f"{{cut:{_DT}}}"
    return f"multiIf(side = 1, 1, side = 0, {anchor} >= {cut}, {anchor} < {cut})"


def feedback_rows(where: str, *, read: Read, prune: str, agencies: str = "1") -> str:
    """One row per feedback version with its answer deadline (`deadline_day`) and judging
    instant `t` (the judged_at parameter); sum `sign` instead of counting rows."""
    rows = item_rows("feedback", where, prune, read, agencies)
    return layered(rows, [_with_t(SINGLE_T), Layer(_FEEDBACK_JUDGED)])


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def named_rows(client: Client, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """A query's rows as dicts: a read to hand to storage.pool.run_all."""
    return list(client.query(sql, parameters=used(sql, params)).named_results())


def day_split(kind: Reads, period: Period, now: datetime, params: dict[str, Any]) -> Split | None:
    """Where a question stops reading the day counts of `kind` (core/figures/days.py): at
    the start of the day it is judged on (today, or the day after a period that has ended).
    Sets the parameters first_day, cut_day, cut, first_month and cut_month; None when no
    whole day comes before it."""
    t = min(period.end, now)
    cut_day = t.astimezone(VN).date()
    if cut_day <= period.first_day:
        return None
    cut = datetime.combine(cut_day, time(), VN).astimezone(UTC)
    first = period.first_day
    # the months wholly inside first_day..cut_day: from the first month that starts on or after
    # the first day, to the month the cut falls in
    first_month = first if first.day == 1 else next_month(first)
    cut_month = cut_day.replace(day=1)
    params.update(
        first_day=first, cut_day=cut_day, cut=cut, first_month=first_month, cut_month=cut_month
    )
    # from the cut on, the facts: up to the judging instant, or the period's end for receipts
    # (a dossier received after the judging instant but within the period is counted)
    fresh = None
    if cut < period.end:
        fresh = prune_clause(kind, cut, period.end, t, start_param="cut")
    edges = first < first_month or cut_day > cut_month
    return Split(fresh, f"{days.DAY_ANCHORS[kind]} < {{cut:{_DT}}}", first_month < cut_month, edges)


# Columns of the judgment (_DOSSIER_JUDGED, _APOLOGY_JUDGED) a figure's SQL may name.
_JUDGED = ("timeliness", "effective_at", "requests", "judged_at", "finished_by_t")
_APOLOGY = ("apology_ok", "apology_deadline_day", "horizon_day", "due_day", "due_missed")

_GROUP_COLUMNS = {"agency": "agency_code", "domain": "domain_code", "level": "level"}


# A drill-down item's timeliness (services/api/drilldown.py): a dossier finished by the judging
# instant as §2 judged it at its end (early, on_time, late); one still open there within its
# deadline or overdue at that instant, as Biểu II.06a counts open dossiers (report_ii06a.py,
# at_t_dossiers): it has not finished, so it is neither early nor late yet. The figures keep
# `timeliness` itself, whose 'late' for an open dossier is this 'overdue' (OPEN_LATE).
ITEM_TIMELINESS = (
    "multiIf(timeliness IS NULL, NULL, finished_by_t, timeliness, "
    "timeliness = 'late', 'overdue', 'within')"
)
# Named apart in the SQL: an alias `timeliness` would replace the column in the figure's WHERE.
_ITEM_RENAMED = {"item_timeliness": "timeliness"}
_ITEM_KEYS = {"dossier": "dossier_id", "feedback": "feedback_id"}

_ITEM_COLUMNS = {
    "dossier": (
        "agency_code, dossier_id, domain_code, level, channel, received_at, due_at, end_at, "
        f"effective_at, requests AS supplements, {ITEM_TIMELINESS} AS item_timeliness, "
        "event_count"
    ),
    "feedback": (
        "agency_code, feedback_id, topic, filed_at, due_at, answered_at, published_at, event_count"
    ),
}


class MetricQueryError(ValueError):
    """The question cannot be asked of this metric (e.g. a domain filter on feedback)."""


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC

    @classmethod
    def from_dates(cls, first: date, last: date) -> Period:
        """Whole calendar days in Asia/Ho_Chi_Minh, `last` included."""
        if last < first:
            raise MetricQueryError("`to` is before `from`")
        if first < FIRST_DAY or last > LAST_DAY:
            # DateTime64(3) holds 1900..2299; beyond it Python's datetime overflows too
            raise MetricQueryError(f"dates must lie within {FIRST_DAY}..{LAST_DAY}")
        start = datetime.combine(first, time(), VN).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time(), VN).astimezone(UTC)
        return cls(start, end)

    @property
    def first_day(self) -> date:
        return self.start.astimezone(VN).date()

    @property
    def last_day(self) -> date:
        return (self.end.astimezone(VN) - timedelta(days=1)).date()


@dataclass(frozen=True)
class Filters:
    agencies: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricRow:
    group: str | None
    numerator: int
    denominator: int
    events: int = 0  # distinct events behind the items counted (provenance)
    watermark: datetime | None = None  # newest ingest time among them
    # Items of the denominator outside the numerator whose outcome is not decided yet at the
    # judging instant (Metric.pending: feedback still within its answer deadline); 0 for a
    # figure without that notion.
    pending: int = 0

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True)
class DailyRow:
    agency: str
    day: date
    hits: int
    total: int
    pending: int
    watermark: datetime | None


@dataclass
class MetricQuery:
    metric: Metric
    period: Period
    now: datetime
    filters: Filters = field(default_factory=Filters)
    group_by: GroupBy | None = None
    rule_set: RuleSet = field(default_factory=rules.get)
    # None: the live state. An ingest instant: only what was stored by then (reproducible).
    as_of: datetime | None = None
    org_tree: str = ""  # version of the org tree the agency filter was expanded with
    # Catalogue facts the SQL needs as sets of procedure codes (valid at the period end).
    full_online_eligible: tuple[str, ...] = ()

    def sql(self, read: Read | None = None, months: bool = False) -> tuple[str, dict[str, Any]]:
        """`months`: rows per group and month of the anchor, zero denominators kept (the cells
        run_with_months adds up)."""
        read = read or Read(self.as_of is not None)
        params: dict[str, Any] = {}
        split = self._split(params, read)
        source = self._source(params, read, bucketed=True, split=split)
        keys = "grp, month" if months else "grp"
        having = "" if months else "HAVING denominator != 0 "
        if split is None:
            sql = f"{self._partial(source, months=months)} {having}ORDER BY {keys}"
            return sql, used(sql, params)
        if self.metric.pending is not None:  # the day counts know no deadline to come
            raise MetricQueryError(f"{self.metric.id}: undecided items need the facts")
        # whole days from the day counts, the rest from the facts (core/figures/days.py)
        bucket = "month" if months else self.group_by
        counted = days.day_rows(
            self.metric.reads,
            self._filters(params),
            bucket if bucket in ("day", "month") else None,
            months=split.months,
            edges=split.edges,
        )
        partials = [self._partial(_rows_with_t(counted, SINGLE_T), counts=True, months=months)]
        if source:
            partials.append(self._partial(source, months=months))
        union = "\nUNION ALL\n".join(partials)
        sql = (
            f"SELECT {keys}, sum(numerator) AS numerator, sum(denominator) AS denominator, "
            "sum(events) AS events, max(watermark) AS watermark, sum(pending) AS pending "
            f"FROM ({union}) GROUP BY {keys} {having}ORDER BY {keys}"
        )
        return sql, used(sql, params)

    def _partial(self, source: str, counts: bool = False, months: bool = False) -> str:
        """The figure's sums per group (and month of the anchor) over `source`: facts rows (a
        row per item version), or day counts (a row per day and kind of dossier, `sign`
        holding how many)."""
        numerator = self.metric.weighted_numerator_sql()
        events = "sum(sign * event_count)"
        if counts:
            summed = days.DAY_METRICS[self.metric.id]
            if summed is not None:
                numerator = f"toInt64(sumIf({summed}, {self.metric.numerator}))"
            events = "sum(events)"
        month = f", {self._group_expr('month')} AS month" if months else ""
        pending = "toInt64(0)" if counts else self._undecided()
        return (
            f"SELECT {self._group_expr()} AS grp{month}, "
            f"{numerator} AS numerator, sum(sign) AS denominator, {events} AS events, "
            f"maxIf(last_ingested_at, sign > 0) AS watermark, {pending} AS pending "
            f"FROM ({source}) WHERE {self.metric.population} "
            f"GROUP BY grp{', month' if months else ''}"
        )

    def _undecided(self) -> str:
        """The sum of the population's undecided items (Metric.pending) out of the numerator.
        Both conditions are read as false where NULL: an unanswered item's `answered_at < t` is
        NULL, and NOT NULL is NULL too, which sumIf skips; written plainly, every unanswered
        item fell out of the count."""
        if self.metric.pending is None:
            return "toInt64(0)"
        return (
            f"sumIf(sign, NOT ifNull(({self.metric.numerator}), 0) "
            f"AND ifNull(({self.metric.pending}), 0))"
        )

    def _split(self, params: dict[str, Any], read: Read) -> Split | None:
        """Where a live flow figure stops reading the day counts (day_split). None: the facts
        alone (as of an instant, or a figure the counts do not answer)."""
        if read.as_of or not read.counts or self.metric.id not in days.DAY_METRICS:
            return None
        return day_split(self.metric.reads, self.period, self.now, params)

    def items(
        self, client: Client, part: Literal["numerator", "denominator"], limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """The items behind the figure (judged at the period end), paged: (total, page)."""
        base, params = self._items_from(part, Read.of(client, self.as_of))
        total = client.query(f"SELECT sum(sign) {base}", parameters=params).result_rows[0][0]
        page = self._item_rows(client, base, params, limit, offset)
        return int(total or 0), page

    def item_chunks(
        self, client: Client, part: Literal["numerator", "denominator"], chunk: int, limit: int
    ) -> Iterator[list[dict[str, Any]]]:
        """The first `limit` items behind the figure in the order of items(), `chunk` at a time:
        each chunk one query resuming after the last item of the one before (keyset), so memory
        holds one chunk whatever the population, each query reads only the items from there on
        (the facts are ordered by agency and item), and an item that changes between two
        chunks is never listed twice nor skipped."""
        read = Read.of(client, self.as_of)
        after: tuple[str, str] | None = None
        while limit > 0:
            base, params = self._items_from(part, read, after)
            rows = self._item_rows(client, base, params, min(chunk, limit), 0)
            if rows:
                yield rows
            if len(rows) < min(chunk, limit):
                return
            limit -= len(rows)
            after = (rows[-1]["agency_code"], rows[-1][_ITEM_KEYS[self.metric.entity]])

    def _items_from(
        self,
        part: Literal["numerator", "denominator"],
        read: Read,
        after: tuple[str, str] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The FROM and WHERE of the items of `part` (after the item `after`), and their
        parameters."""
        params: dict[str, Any] = {}
        resume = None
        if after is not None:
            key = _ITEM_KEYS[self.metric.entity]
            # agency first alone: the facts' primary key prunes by it
            resume = (
                "agency_code >= {after_agency:String} AND (agency_code > {after_agency:String} "
                f"OR {key} > {{after_key:String}})"
            )
            params.update(after_agency=after[0], after_key=after[1])
        source = self._source(params, read, bucketed=False, items=True, resume=resume)
        condition = self.metric.population
        if part == "numerator":
            condition = f"({condition}) AND ({self.metric.numerator})"
        base = f"FROM ({source}) WHERE {condition}"
        return base, used(base, params)

    def _item_rows(
        self, client: Client, base: str, params: dict[str, Any], limit: int, offset: int
    ) -> list[dict[str, Any]]:
        columns = _ITEM_COLUMNS[self.metric.entity]
        key = _ITEM_KEYS[self.metric.entity]
        # A version and its cancellation are the same row with opposite signs: what is left
        # after summing is the item as it stands.
        rows = client.query(
            f"SELECT * EXCEPT (net) FROM (SELECT {columns}, sum(sign) AS net {base} "
            f"GROUP BY ALL HAVING net > 0) ORDER BY agency_code, {key} "
            "LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
            parameters={**params, "limit": limit, "offset": offset},
        ).named_results()
        return [
            {
                _ITEM_RENAMED.get(k, k): utc(v) if isinstance(v, datetime) else v
                for k, v in row.items()
            }
            for row in rows
        ]

    def daily_by_agency(self, client: Client, read: Read | None = None) -> list[DailyRow]:
        """Per agency and local day of the metric's anchor: numerator, population and undecided
        items, judged now (plan forecasts, core/plans/status.py). Flow figures only.
        `read`: as run()."""
        if self.metric.anchor is None:
            raise MetricQueryError(f"{self.metric.id} is a stock figure: it has no daily series")

        def ask(read: Read) -> list[DailyRow]:
            params: dict[str, Any] = {}
            split = self._split(params, read)
            source = self._source(params, read, bucketed=False, split=split)
            num = self.metric.numerator

            def partial(rows: str) -> str:
                return (
                    f"SELECT agency_code, toDate({self.metric.anchor}, '{TZ}') AS day, "
                    f"sumIf(sign, {num}) AS hits, sum(sign) AS total, "
                    f"{self._undecided()} AS pending, "
                    f"maxIf(last_ingested_at, sign > 0) AS watermark "
                    f"FROM ({rows}) WHERE {self.metric.population} GROUP BY agency_code, day"
                )

            parts = [partial(source)] if source else []
            if split is not None:  # whole past days from the day counts (core/figures/days.py)
                counted = days.day_rows(self.metric.reads, self._filters(params), "day")
                parts.append(partial(_rows_with_t(counted, SINGLE_T)))
            union = "\nUNION ALL\n".join(parts)
            sql = (
                "SELECT agency_code, day, sum(hits) AS hits, sum(total) AS total, "
                "sum(pending) AS pending, max(watermark) AS watermark "
                f"FROM ({union}) GROUP BY agency_code, day HAVING total != 0 "
                "ORDER BY agency_code, day"
            )
            rows = client.query(sql, parameters=used(sql, params)).result_rows
            return [
                DailyRow(str(a), d, int(h), int(n), int(q), utc(w)) for a, d, h, n, q, w in rows
            ]

        return consistently(client, self.as_of, read, ask)

    def _source(
        self,
        params: dict[str, Any],
        read: Read,
        *,
        bucketed: bool,
        items: bool = False,
        split: Split | None = None,
        resume: str | None = None,
    ) -> str:
        """`resume`: a condition on the items' key columns (the drill-down's keyset), read with
        the filters so that it prunes what is read."""
        judged_at = min(self.period.end, self.now)
        params.update(
            period_start=self.period.start,
            period_end=self.period.end,
            judged_at=judged_at,
            full_online_eligible=list(self.full_online_eligible),
            **rule_params(self.rule_set),
        )
        where = self._filters(params)
        if resume is not None:
            where = f"{where} AND ({resume})"
        if self.as_of is not None:
            params["as_of"] = self.as_of
        stock_buckets = (
            bucketed and self.metric.anchor is None and self.group_by in ("day", "month")
        )
        t_min = judged_at
        if stock_buckets:
            ends = self._bucket_ends()
            params["bucket_ends"] = ends
            t_min = min(ends, default=judged_at)
            t_source = "ARRAY JOIN {bucket_ends:Array(DateTime64(3, 'UTC'))} AS t"
        else:
            t_source = SINGLE_T
        prune = prune_clause(self.metric.reads, self.period.start, self.period.end, t_min)
        agencies = "agency_code IN {agencies:Array(String)}" if self.filters.agencies else "1"
        if self.metric.entity == "feedback":
            return feedback_rows(where, read=read, prune=prune, agencies=agencies)
        # Judge only what the figure reads: planning the judgment costs more than most scans.
        reads = " ".join(
            x or "" for x in (self.metric.population, self.metric.numerator, self.metric.summed)
        )
        if items or any(name in reads for name in _JUDGED):
            apology = items or any(name in reads for name in _APOLOGY)
            return judged_dossiers(
                where,
                t_source,
                read=read,
                prune=prune,
                agencies=agencies,
                apology=apology,
                split=split,
                finished=self.metric.finished_only and not items,
            )
        return plain_dossiers(
            where, t_source, read=read, prune=prune, agencies=agencies, split=split
        )

    def run(self, client: Client, read: Read | None = None) -> list[MetricRow]:
        """`read`: how the store stands (Read.of), when the caller asks many questions in a row
        (the metrics service's cycle): asked once, not once per question. It stays right while
        the refolder moves on: a question folds from the parts whatever is past the watermark
        it reads itself."""

        def ask(read: Read) -> list[MetricRow]:
            sql, params = self.sql(read)
            return [
                MetricRow(None if g is None else str(g), int(n), int(d), int(ev), utc(wm), int(q))
                for g, n, d, ev, wm, q in client.query(sql, parameters=params).result_rows
            ]

        return consistently(client, self.as_of, read, ask)

    def run_with_months(
        self, client: Client, read: Read | None = None
    ) -> tuple[list[MetricRow], list[MetricRow]]:
        """run() and the same figure grouped by month, from one read: a flow figure counts each
        item once, in the month of its anchor, judged at one instant either way, so both are
        sums of the same (group, month) cells (a page shows both side by side)."""
        if self.metric.anchor is None or self.group_by not in (None, "agency"):
            raise MetricQueryError("by month beside: a flow figure, by agency or not grouped")

        def ask(read: Read) -> tuple[list[MetricRow], list[MetricRow]]:
            sql, params = self.sql(read, months=True)
            by_group: dict[str | None, list[MetricRow]] = defaultdict(list)
            by_month: dict[str | None, list[MetricRow]] = defaultdict(list)
            for g, month, n, d, ev, wm, q in client.query(sql, parameters=params).result_rows:
                group = None if g is None else str(g)
                cell = MetricRow(group, int(n), int(d), int(ev), utc(wm), int(q))
                by_group[group].append(cell)
                by_month[str(month)].append(cell)
            return _summed(by_group), _summed(by_month)

        return consistently(client, self.as_of, read, ask)

    def _filters(self, params: dict[str, Any]) -> str:
        clauses = ["1"]
        if self.filters.agencies:
            clauses.append("agency_code IN {agencies:Array(String)}")
            params["agencies"] = list(self.filters.agencies)
        for name, values in (("domain", self.filters.domains), ("level", self.filters.levels)):
            if not values:
                continue
            if self.metric.entity != "dossier":
                raise MetricQueryError(f"feedback has no {name}; drop the `{name}` filter")
            clauses.append(f"{_GROUP_COLUMNS[name]} IN {{{name}s:Array(String)}}")
            params[f"{name}s"] = list(values)
        return " AND ".join(clauses)

    def _group_expr(self, group_by: GroupBy | None = None) -> str:
        """The SQL of a group: the query's own, or `group_by` (the month beside it)."""
        group_by = group_by or self.group_by
        if group_by is None:
            return "NULL"
        if group_by in _GROUP_COLUMNS:
            if self.metric.entity != "dossier" and group_by != "agency":
                raise MetricQueryError(f"feedback cannot be grouped by {group_by}")
            return f"toString({_GROUP_COLUMNS[group_by]})"
        anchor = self.metric.anchor or "subtractMilliseconds(t, 1)"
        bucket = "toDate" if group_by == "day" else "toStartOfMonth"
        return f"toString({bucket}({anchor}, '{TZ}'))"

    def _bucket_ends(self) -> list[datetime]:
        """End of every day/month bucket of the period (capped at now), as UTC instants."""
        ends: list[datetime] = []
        cursor = self.period.start.astimezone(VN).date()
        last = (self.period.end.astimezone(VN) - timedelta(microseconds=1)).date()
        while cursor <= last:
            nxt = cursor + timedelta(days=1) if self.group_by == "day" else next_month(cursor)
            end = datetime.combine(nxt, time(), VN).astimezone(UTC)
            ends.append(min(end, self.period.end, self.now))
            cursor = nxt
            if ends[-1] >= self.now:
                break
        return ends


def _summed(cells: dict[str | None, list[MetricRow]]) -> list[MetricRow]:
    """Per group, its cells added up, as the figure's own GROUP BY would: groups in order, those
    with no items (a zero denominator) left out."""
    out = []
    for group in sorted(cells, key=lambda g: "" if g is None else g):
        parts = cells[group]
        marks = [c.watermark for c in parts if c.watermark is not None]
        row = MetricRow(
            group,
            sum(c.numerator for c in parts),
            sum(c.denominator for c in parts),
            sum(c.events for c in parts),
            max(marks, default=None),
            sum(c.pending for c in parts),
        )
        if row.denominator != 0:
            out.append(row)
    return out


def utc(value: datetime | None) -> datetime | None:
    """Engine datetimes may come back without their zone; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def metric_query(metric_id: str, **kwargs: Any) -> MetricQuery:
    try:
        metric = METRICS[metric_id]
    except KeyError:
        raise MetricQueryError(f"unknown metric {metric_id!r}") from None
    return MetricQuery(metric=metric, **kwargs)
