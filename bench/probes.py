"""What the benchmark observes: when events become queryable, and who used the CPU meanwhile."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from bench.workload import START_MS, dossier_of

_TICK = os.sysconf("SC_CLK_TCK")


class Watcher(threading.Thread):
    """Polls ClickHouse for how many events are queryable, from its own thread and client so
    that the busy event loop it observes cannot delay it (chDB serialises calls per client).

    Ingest stores the stream in order, one insert at a time, and an insert becomes visible in
    `events` first and in `dossier_parts` (its materialized view, which every figure reads
    through the facts or, until the refolder takes them, directly) 50-200 ms later. So when
    `count() FROM events` says e, the first e events are in `events`; once event e-1 is folded
    into its dossier's parts, the whole insert is queryable. Both reads are cheap (~1 ms and
    ~4 ms, the second only when the count moved), so polling costs the system little CPU.
    """

    def __init__(self, url: str, n: int, interval: float) -> None:
        super().__init__(daemon=True)
        from core.storage.clickhouse import connect

        self.client = connect(url)
        self.n = n
        self.interval = interval
        self.polls: list[tuple[float, int]] = []  # (time.time() when seen, events queryable)
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        queryable = 0
        try:
            while not self.done.is_set():
                in_events = self.client.command("SELECT count() FROM events")
                assert isinstance(in_events, int), in_events
                if in_events > queryable and self._folded(in_events - 1):
                    queryable = in_events
                    self.polls.append((time.time(), queryable))
                if queryable >= self.n:
                    self.done.set()
                    return
                time.sleep(self.interval)
        except BaseException as exc:
            self.error = exc
            self.done.set()

    def _folded(self, i: int) -> bool:
        agency, dossier = dossier_of(i)
        return bool(
            self.client.command(
                "SELECT toUnixTimestamp64Milli(max(last_event_at)) >= {t:Int64} "
                "FROM dossier_parts WHERE agency_code = {a:String} AND dossier_id = {d:String}",
                parameters={"t": START_MS + i, "a": agency, "d": dossier},
            )
        )

    def check_fold(self) -> None:
        """Every event counted once in the raw table and in the folded dossier state."""
        folded = self.client.command("SELECT sum(event_count) FROM dossiers")
        stored = self.client.command("SELECT count() FROM events FINAL")
        assert folded == stored == self.n, (folded, stored, self.n)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread of a process, keyed `<name>:<tid>`."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[f"{name}:{task.name}"] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def main_thread_share(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """CPU seconds used between two thread_cpu() readings of this process by its main thread
    (the event loop) and by all its other threads (chDB's engine and the threads that call it)."""
    main = f":{os.getpid()}"
    on_main = others = 0.0
    for key, seconds in after.items():
        used = seconds - before.get(key, 0.0)
        if key.endswith(main):
            on_main += used
        else:
            others += used
    return on_main, others


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICK
