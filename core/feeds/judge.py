"""Judging a feed's working days: pure (volumes and manifest days in, judgements out).

A feed is one integrator's system (`source`) publishing for one agency. Only working days are
judged or used as history: weekends and holidays (Tết) are neither, make-up working days are
both. Every judgement is of the latest working day that has passed at `now`: its local end
(Asia/Ho_Chi_Minh) plus a grace period for events and manifests that come a little late.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median
from typing import Literal

from core.feeds.settings import FeedSettings
from core.reference.calendar import WorkingCalendar
from core.zone import VN

Feed = tuple[str, str]  # (source, agency_code)
VolumeReason = Literal["silent", "normal", "short_history", "small_feed"]


@dataclass(frozen=True)
class FeedRule:
    days: int = 20  # working days read per evaluation: the history and the silence judged
    min_days: int = 10  # a feed with less history than this has no expectation yet
    ratio: float = 0.2  # a day below ratio × expected is "far below"
    min_volume: float = 10.0  # an expectation below this is never alerted on (a small commune)
    grace: timedelta = timedelta(hours=6)  # after a day's local end, before it is judged

    def __post_init__(self) -> None:
        if not 1 <= self.min_days < self.days:
            raise ValueError("feeds: need 1 <= min_days < days")

    @classmethod
    def from_settings(cls, s: FeedSettings) -> FeedRule:
        return cls(
            days=s.metrics_feeds_days,
            min_days=s.metrics_feeds_min_days,
            ratio=s.metrics_feeds_ratio,
            min_volume=s.metrics_feeds_min_volume,
            grace=timedelta(hours=s.metrics_feeds_grace_hours),
        )


def judged_day(now: datetime, rule: FeedRule, calendar: WorkingCalendar) -> date:
    """The latest working day whose local end plus the grace has passed at `now`."""
    # Day d has ended once the local date of (now - grace) is after it.
    d = (now - rule.grace).astimezone(VN).date() - timedelta(days=1)
    return d if calendar.is_working_day(d) else calendar.add_working_days(d, -1)


def window(last: date, rule: FeedRule, calendar: WorkingCalendar) -> list[date]:
    """The `rule.days` working days ending with `last` (a working day), oldest first."""
    first = calendar.add_working_days(last, -(rule.days - 1))
    span = (last - first).days
    days = [first + timedelta(days=i) for i in range(span + 1)]
    return [d for d in days if calendar.is_working_day(d)]


@dataclass(frozen=True)
class VolumeJudgement:
    """One feed's latest judged working day against its own history."""

    feed: Feed
    days: tuple[date, ...]  # the window, oldest first; the last one is the day judged
    volumes: tuple[int, ...]  # dossiers received on each
    reason: VolumeReason
    expected: float | None  # the median of the history before the silence (None: no history)
    history_days: int  # how many working days that median is of
    silent_from: int | None = None  # index in `days` where the silence began (reason "silent")

    @property
    def day(self) -> date:
        return self.days[-1]

    @property
    def volume(self) -> int:
        return self.volumes[-1]

    @property
    def silent_days(self) -> tuple[date, ...]:
        return () if self.silent_from is None else self.days[self.silent_from :]

    @property
    def silent_volumes(self) -> tuple[int, ...]:
        return () if self.silent_from is None else self.volumes[self.silent_from :]


def judge_volume(
    feed: Feed, days: Sequence[date], by_day: Mapping[date, int], rule: FeedRule
) -> VolumeJudgement:
    """Is the last day of `days` part of a silence: a run of working days, ending with it, each
    below ratio × the median of the feed's history before the run (at least min_days working
    days since the feed's first dossier in the window, median at least min_volume)?

    The history is taken before the run, not before each day, so a silence of several days is
    judged against the feed's normal volume rather than against itself."""
    volumes = tuple(by_day.get(d, 0) for d in days)
    # The feed's history starts with its first dossier in the window: a new feed has none.
    first = next((i for i, v in enumerate(volumes) if v > 0), len(volumes))

    def run_from(start: int) -> VolumeJudgement:
        history = volumes[first:start]
        if len(history) < rule.min_days:
            return VolumeJudgement(feed, tuple(days), volumes, "short_history", None, len(history))
        expected = float(median(history))
        reason: VolumeReason = "normal"
        if expected < rule.min_volume:
            reason = "small_feed"
        elif all(v < rule.ratio * expected for v in volumes[start:]):
            reason = "silent"
        silent_from = start if reason == "silent" else None
        return VolumeJudgement(
            feed, tuple(days), volumes, reason, expected, len(history), silent_from
        )

    found = run_from(len(volumes) - 1)
    start = len(volumes) - 2
    while found.reason == "silent" and start >= first:
        longer = run_from(start)
        if longer.reason != "silent":
            break
        found, start = longer, start - 1
    return found


@dataclass(frozen=True)
class ManifestJudgement:
    """One manifest-sending feed's working days without a manifest, ending with the day judged."""

    feed: Feed
    days: tuple[date, ...]  # the window, oldest first
    missing: tuple[date, ...]  # the run of days without a manifest that ends with the last day
    without: tuple[date, ...]  # every working day of the window since its first without one

    @property
    def day(self) -> date:
        return self.days[-1]


def judge_manifests(
    feed: Feed, days: Sequence[date], manifest_days: set[date]
) -> ManifestJudgement:
    """Only days from the feed's first manifest in the window on are expected to have one: a
    feed starts being watched with its first manifest."""
    since = min(manifest_days)
    expected = [d for d in days if d >= since]
    without = tuple(d for d in expected if d not in manifest_days)
    run: list[date] = []
    for d in reversed(expected):
        if d in manifest_days:
            break
        run.append(d)
    return ManifestJudgement(feed, tuple(days), tuple(reversed(run)), without)
