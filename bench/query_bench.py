"""The API's read path at a province's real history size: build a store, then time requests.

    python -m bench.query_bench build --dossiers 1000000 --store /work/bench-stores/1m
    python -m bench.query_bench run --store /work/bench-stores/1m [--runs 30] [--out FILE]

`build` writes a chDB store through the system's own write path (bench/store_build.py, in a
child process), then runs `motcua replay` on it and times that too. `run` starts `motcua api` on
the store as a child process and times each request sequentially with httpx: 2 warm-ups, then
`--runs` timed runs; the API's CPU per request and its peak RSS come from /proc. Every child
(build, replay, migrate, API) runs from this file's checkout with cwd and PYTHONPATH set to it,
so a worktree of an older commit measures that commit's code. See bench/README.md (Query benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from bench.probes import machine_busy, process_cpu

ROOT = Path(__file__).resolve().parent.parent
YEAR_FROM, YEAR_TO = "2026-01-01", "2026-11-30"

# --- children: every one runs this checkout's code ---------------------------------------------


def child_env(root: Path = ROOT, **motcua: str) -> dict[str, str]:
    """The environment of a child: no MOTCUA_* of the caller's (a stray MOTCUA_NATS_URL or data
    dir would change what is measured), the checkout `root` (this one) first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p
    )
    env.update({f"MOTCUA_{k.upper()}": v for k, v in motcua.items()})
    return env


def cli_module(root: Path = ROOT) -> str:
    """The `motcua` command's module in checkout `root`: motcua.cli since issue 16's layout,
    services.cli before it (a --pair-code checkout may predate the move)."""
    return "motcua.cli" if (root / "motcua" / "cli.py").is_file() else "services.cli"


def code_location(env: dict[str, str], root: Path = ROOT) -> str:
    """Where `services` is imported from by a child with this environment: the check that the
    code measured is this checkout's and not the editable install's."""
    done = subprocess.run(
        [sys.executable, "-c", "import services; print(services.__file__)"],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def _last_json_line(text: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return result


@dataclass
class Measured:
    """A finished child process: how long it took and its peak resident set."""

    returncode: int
    seconds: float
    peak_rss_mb: float | None
    output: str
    cpu_seconds: float | None = None  # the child's user + system time (GNU time only)
    # CPU the rest of the machine used meanwhile: a shared machine slows the child down.
    other_cpu_seconds: float | None = None


def run_measured(cmd: list[str], env: dict[str, str], echo: IO[str] | None) -> Measured:
    """Run a child to its end, teeing its stdout to `echo`, with its peak RSS: from GNU time
    when installed (exact), else polled from /proc/<pid>/status VmHWM while it runs."""
    time_v = Path("/usr/bin/time").is_file()
    with tempfile.TemporaryDirectory(prefix="query-bench-") as tmp:
        rusage_file = Path(tmp) / "time.txt"
        full = ["/usr/bin/time", "-v", "-o", str(rusage_file), *cmd] if time_v else cmd
        began, busy = time.perf_counter(), machine_busy()
        child = subprocess.Popen(full, cwd=ROOT, env=env, stdout=subprocess.PIPE)
        assert child.stdout is not None
        polled = 0.0
        out: list[bytes] = []
        os.set_blocking(child.stdout.fileno(), False)
        while True:
            chunk = child.stdout.read()
            if chunk:
                out.append(chunk)
                if echo is not None:
                    echo.write(chunk.decode(errors="replace"))
                    echo.flush()
            if not time_v:
                polled = max(polled, _status_mb(child.pid, "VmHWM") or 0.0)
            if child.poll() is not None and not chunk:
                break
            time.sleep(0.2)
        seconds, busy = time.perf_counter() - began, machine_busy() - busy
        measured = Measured(
            child.returncode, seconds, polled or None, b"".join(out).decode(errors="replace")
        )
        if time_v and rusage_file.exists():
            usage = rusage_file.read_text()
            found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", usage)
            measured.peak_rss_mb = int(found[1]) / 1024 if found else None
            cpu = [
                float(m[1])
                for m in re.finditer(r"(?:User|System) time \(seconds\): ([\d.]+)", usage)
            ]
            if len(cpu) == 2:
                measured.cpu_seconds = sum(cpu)
                measured.other_cpu_seconds = max(0.0, busy - sum(cpu))
    return measured


def _status_mb(pid: int, field: str) -> float | None:
    """A memory figure of /proc/<pid>/status (VmHWM: peak resident set, VmRSS: now) in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # the process has ended
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(found[1]) / 1024 if found else None


# --- build -------------------------------------------------------------------------------------


def cmd_build(args: argparse.Namespace) -> None:
    store = Path(args.store).resolve()
    if store.exists() and any(store.iterdir()):
        raise SystemExit(f"{store} is not empty: build into a new directory")
    per_year = min(args.per_year, args.dossiers)
    simulated = min(args.simulated or per_year, per_year)
    env = child_env()
    print(f"code under test: {code_location(env)}", file=sys.stderr, flush=True)
    base: dict[str, Any] | None = None
    copy_seconds = 0.0
    if args.from_store:
        base, copy_seconds = _copy_base(Path(args.from_store).resolve(), store, per_year, args)
        simulated = base["layout"]["simulated"]
    child = [
        sys.executable, "-m", "bench.query_bench", "_build-store", "--store", str(store),
        "--dossiers", str(args.dossiers), "--per-year", str(per_year),
        "--simulated", str(simulated), "--seed", str(args.seed),
    ] + (["--no-plans"] if args.no_plans else []) + (["--from-base"] if base else [])  # fmt: skip
    built = run_measured(child, env, echo=None)
    if built.returncode != 0:
        raise SystemExit(f"the build failed ({built.returncode})")
    report = _last_json_line(built.output)
    if base is not None:
        # The base year's figures are the base build's; this build only copied it and grew it.
        report["base"] = {
            "store": args.from_store,
            "copy_dir_seconds": copy_seconds,
            "build_wall_seconds": base["build_wall_seconds"],
        }
        report["simulated"] = base["simulated"]
        report["copies"] = base["copies"] + report["copies"]
    report["build_wall_seconds"] = built.seconds + copy_seconds
    report["build_cpu_seconds"] = built.cpu_seconds
    report["build_other_load_cpu_seconds"] = built.other_cpu_seconds
    print("running `motcua replay` on the store …", file=sys.stderr, flush=True)
    replay_env = child_env(clickhouse_url=f"chdb://{store}")
    replayed = run_measured(
        [sys.executable, "-m", "motcua.cli", "replay"], replay_env, echo=sys.stderr
    )
    if replayed.returncode != 0:
        raise SystemExit(f"motcua replay failed ({replayed.returncode})")
    report["replay"] = {
        "seconds": replayed.seconds,
        "peak_rss_mb": replayed.peak_rss_mb,
        "cpu_seconds": replayed.cpu_seconds,
        "other_load_cpu_seconds": replayed.other_cpu_seconds,
        "tables": {
            m[1]: int(m[2]) for m in re.finditer(r"([\w.]+): (\d+) rows$", replayed.output, re.M)
        },
    }
    report["store"] = str(store)
    report["code"] = code_location(env)
    report["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    text = json.dumps(report, indent=2, default=str) + "\n"
    store.with_name(store.name + ".build.json").write_text(text)
    if args.out:
        out = _out_path(args.out)
        out.write_text(text)
    print(build_summary(report))


def _copy_base(
    base: Path, store: Path, per_year: int, args: argparse.Namespace
) -> tuple[dict[str, Any], float]:
    """Start from a copy of a built single-year store (its directory, copied while no process
    has it open), so a longer history does not simulate its base year again."""
    found = base.with_name(base.name + ".build.json")
    if not found.exists():
        raise SystemExit(f"{found} not found: --from-store takes a store built by this bench")
    built: dict[str, Any] = json.loads(found.read_text())
    layout = built["layout"]
    wanted = (per_year, per_year, args.seed)
    if (layout["dossiers"], layout["per_year"], layout["seed"]) != wanted:
        raise SystemExit(
            f"{base} is not a one-year store of {per_year:,} dossiers, seed {args.seed}"
        )
    print(f"copying {base} → {store} …", file=sys.stderr, flush=True)
    began = time.perf_counter()
    if store.exists():
        store.rmdir()  # empty: checked by the caller
    shutil.copytree(base, store, symlinks=True)
    return built, time.perf_counter() - began


def build_summary(report: dict[str, Any]) -> str:
    sim, counts = report["simulated"], report["counts"]
    lines = [
        f"store {report['store']}",
        f"  layout: {report['layout']['description']}",
        f"  events: {counts['events']:,}; dossiers received by year: "
        + ", ".join(f"{y} {n:,}" for y, n in counts["dossiers_received_by_year"].items()),
        f"  simulated → process → EventWriter.write: {sim['events']:,} events in "
        f"{sim['seconds'] / 60:,.1f} min ({sim['events_per_s']:,.0f}/s end to end; inserts "
        f"alone {sim['write_events_per_s']:,.0f}/s)",
    ]
    for c in report["copies"]:
        lines.append(
            f"  copy {c['copy']}: {c['rows']:,} events in {c['seconds']:,.0f} s "
            f"({c['rows_per_s']:,.0f}/s)"
        )
    if "plans" in report:
        lines.append(
            f"  plan evaluation: {report['plans']['statuses']} statuses in "
            f"{report['plans']['seconds']:,.1f} s"
        )
    replay = report["replay"]
    lines.append(
        f"  build: {report['build_wall_seconds'] / 60:,.1f} min, peak RSS "
        f"{report['peak_rss_mb']:,.0f} MB (the build process, chDB included)"
        + _other_load(report.get("build_other_load_cpu_seconds"))
    )
    if "base" in report:
        lines.append(
            f"    (grown from {report['base']['store']}, whose build took "
            f"{report['base']['build_wall_seconds'] / 60:,.1f} min: a build from scratch is both)"
        )
    lines += [
        f"  motcua replay: {replay['seconds'] / 60:,.1f} min, peak RSS "
        f"{replay['peak_rss_mb'] or 0:,.0f} MB" + _other_load(replay.get("other_load_cpu_seconds")),
        f"  code: {report['code']}",
    ]
    return "\n".join(lines)


def _other_load(cpu_seconds: float | None) -> str:
    # This machine is shared: CPU other processes took meanwhile slowed the step down.
    return (
        f"; other processes took {cpu_seconds:,.0f} CPU-s meanwhile"
        if cpu_seconds and cpu_seconds >= 1
        else ""
    )


def phase_build_store(args: argparse.Namespace) -> None:
    from bench.store_build import Layout, build

    layout = Layout(args.dossiers, args.per_year, args.simulated, args.seed)
    report = build(Path(args.store), layout, plans=not args.no_plans, from_base=args.from_base)
    print(json.dumps(report, default=str), flush=True)


def phase_inspect(args: argparse.Namespace) -> None:
    from bench.store_build import store_counts
    from core.storage.clickhouse import connect

    client = connect(f"chdb://{Path(args.store).resolve()}")
    print(json.dumps(store_counts(client)), flush=True)
    client.close()


# --- the metrics service's full evaluation -----------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> None:
    """What the metrics service does when it starts on a store: every figure of every agency for
    the month and the year (a full cycle), then every target of the shipped plans; cold (a new
    process) and again warm, in one child process so its peak RSS is its own."""
    store = Path(args.store).resolve()
    env = child_env()
    print(f"code under test: {code_location(env)}", file=sys.stderr, flush=True)
    child = [
        sys.executable, "-m", "bench.query_bench", "_evaluate", "--store", str(store),
        "--rounds", str(args.rounds),
    ]  # fmt: skip
    done = run_measured(child, env, echo=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"the evaluation failed ({done.returncode})")
    report = _last_json_line(done.output)
    report.update(
        store=str(store),
        code=code_location(env),
        when=datetime.now(UTC).isoformat(timespec="seconds"),
        peak_rss_mb=done.peak_rss_mb,
        cpu_seconds=done.cpu_seconds,
        other_load_cpu_seconds=done.other_cpu_seconds,
    )
    print(json.dumps(report, indent=2))
    if args.out:
        _out_path(args.out).write_text(json.dumps(report, indent=2) + "\n")


def phase_evaluate(args: argparse.Namespace) -> None:
    from core.figures.refolder import Refolder
    from core.plans import load_plans
    from core.plans.evaluator import Evaluator
    from core.storage.clickhouse import connect
    from services.metrics.service import MetricsService

    client = connect(f"chdb://{Path(args.store).resolve()}")
    # as in the runtime: with a refolder, figures and plans read the facts it folded
    service = MetricsService(client, refolder=Refolder(client))
    evaluator = Evaluator(client, load_plans(), folded_only=True)
    rounds = []
    for _ in range(args.rounds):
        began = time.perf_counter()
        rows = service.compute_once()
        figures = time.perf_counter() - began
        began = time.perf_counter()
        statuses = evaluator.evaluate(datetime.now(UTC))
        plans = time.perf_counter() - began
        print(
            f"  figures {figures:.1f} s ({rows} snapshot rows, full={service.status.last_full}), "
            f"plans {plans:.1f} s ({len(statuses)} statuses)",
            file=sys.stderr,
            flush=True,
        )
        rounds.append(
            {
                "figures_seconds": figures,
                "snapshot_rows": rows,
                "full": service.status.last_full,
                "plans_seconds": plans,
                "statuses": len(statuses),
            }
        )
        service._snapshots._last_full = 0.0  # the next round is a full cycle again, now warm
    print(json.dumps({"rounds": rounds}), flush=True)
    client.close()


# --- run ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    id: str
    label: str
    path: str
    params: dict[str, str] = field(default_factory=dict)


def requests_for(agency: str, as_of: str) -> list[Request]:
    year = {"from": YEAR_FROM, "to": YEAR_TO}
    october = {"from": "2026-10-01", "to": "2026-10-31"}
    return [
        Request(
            "on_time_year_agency",
            "on_time_rate, year by agency",
            "/v1/metrics/on_time_rate",
            {**year, "group_by": "agency"},
        ),
        Request(
            "on_time_year_month",
            "on_time_rate, year by month",
            "/v1/metrics/on_time_rate",
            {**year, "group_by": "month"},
        ),
        Request(
            "online_share_year_one",
            f"online_share, year, {agency}",
            "/v1/metrics/online_share",
            {**year, "agency": agency},
        ),
        Request(
            "online_share_month_one",
            f"online_share, 2026-10, {agency}",
            "/v1/metrics/online_share",
            {**october, "agency": agency},
        ),
        Request(
            "ii06a_quarter",
            "II.06a, Q3 2026, province tree",
            "/v1/reports/ii06a",
            {"from": "2026-07-01", "to": "2026-09-30"},
        ),
        Request(
            "index766_year_agency",
            "index766, year by agency",
            "/v1/index766",
            {**year, "group_by": "agency"},
        ),
        Request(
            "feedback_year_agency",
            "feedback_answered_on_time, year by agency",
            "/v1/metrics/feedback_answered_on_time",
            {**year, "group_by": "agency"},
        ),
        Request(
            "full_online_year_agency",
            "full_online_share, year by agency",
            "/v1/metrics/full_online_share",
            {**year, "group_by": "agency"},
        ),
        Request(
            "full_online_year_one",
            f"full_online_share, year, {agency}",
            "/v1/metrics/full_online_share",
            {**year, "agency": agency},
        ),
        Request("targets", "targets (latest statuses)", "/v1/targets"),
        Request(
            "on_time_year_agency_as_of",
            "on_time_rate, year by agency, as_of",
            "/v1/metrics/on_time_rate",
            {**year, "group_by": "agency", "as_of": as_of},
        ),
        Request("page_province", "page / (uncached)", "/"),
        Request("page_agency", f"page /co-quan/{agency} (uncached)", f"/co-quan/{agency}"),
        Request(
            "drill_down",
            f"drill-down on_time_rate items, 2026-10, {agency}",
            "/v1/metrics/on_time_rate/items",
            {**october, "agency": agency, "part": "denominator", "page_size": "100"},
        ),
    ]


@dataclass
class Outcome:
    id: str
    label: str
    url: str
    status: str = "ok"  # ok | failed | timeout | skipped
    slow: bool = False
    runs: int = 0
    warmup_s: list[float] = field(default_factory=list)
    times_s: list[float] = field(default_factory=list)
    p50_ms: float | None = None
    p95_ms: float | None = None
    cpu_ms_per_request: float | None = None
    cpu_other_s: float = 0.0
    response: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Api:
    """`motcua api` on the store as a child process, with the NATS server it needs for /readyz."""

    def __init__(self, env: dict[str, str], log_path: Path, url: str, root: Path = ROOT) -> None:
        self.env = env
        self.log_path = log_path
        self.url = url
        self.root = root  # the checkout whose code it runs
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, ready_timeout: float) -> float:
        """Start it, wait for /readyz; seconds until ready."""
        began = time.perf_counter()
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", cli_module(self.root), "api"],
                cwd=self.root, env=self.env, stdout=log_file, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = began + ready_timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited ({self.process.returncode}): {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the API was not ready within {ready_timeout:.0f} s: {self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@contextmanager
def nats_server(tmp: Path) -> Iterator[str]:
    """A throwaway nats-server: `motcua api` needs MOTCUA_NATS_URL and reports it in /readyz."""
    from core.messaging.nats_server import EmbeddedNats

    server = EmbeddedNats(tmp / "nats", port=_free_port())
    asyncio.run(server.start())
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def api_on_store(store: Path, key: str, tmp: Path, ready_timeout: float = 600) -> Iterator[Api]:
    """`motcua migrate` (storing `key` as an admin key) then `motcua api` of this checkout on
    `store`, with a throwaway nats-server; stopped on exit. The single-API benches and the
    attack scripts (bench/attacks) run against it."""
    base = {"clickhouse_url": f"chdb://{store}", "data_dir": str(tmp / "data")}
    _migrate(base, key, ROOT)
    port = _free_port()
    with nats_server(tmp) as nats_url:
        env = child_env(
            ROOT, **base, bootstrap_admin_key=key, nats_url=nats_url, api_port=str(port)
        )
        api = Api(env, tmp / "api.log", f"http://127.0.0.1:{port}")
        api.start(ready_timeout)
        try:
            yield api
        finally:
            api.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest rank: with 30 runs p95 is the 29th fastest, with 3 runs the slowest."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _describe(response: httpx.Response) -> dict[str, Any]:
    """Enough of an answer to see that it is not empty or an error page."""
    out: dict[str, Any] = {"status": response.status_code, "bytes": len(response.content)}
    if not response.headers.get("content-type", "").startswith("application/json"):
        return out
    body = response.json()
    if isinstance(body, dict):
        for key in ("groups", "rows", "results", "items", "targets"):
            if isinstance(body.get(key), list):
                out[key] = len(body[key])
        if isinstance(body.get("groups"), list):
            out["denominator"] = sum(g.get("denominator") or 0 for g in body["groups"])
        if isinstance(body.get("total"), int | dict):
            out["total"] = body["total"]
        if isinstance(body.get("provenance"), dict):
            out["events"] = body["provenance"].get("events")
    elif isinstance(body, list):
        out["length"] = len(body)
    return out


class Bench:
    def __init__(self, args: argparse.Namespace, api: Api, client: httpx.Client) -> None:
        self.args = args
        self.api = api
        self.client = client

    def get(self, request: Request) -> tuple[float, httpx.Response]:
        began = time.perf_counter()
        response = self.client.get(request.path, params=request.params)
        return time.perf_counter() - began, response

    def measure(self, request: Request) -> Outcome:
        url = str(self.client.build_request("GET", request.path, params=request.params).url)
        outcome = Outcome(request.id, request.label, url)
        try:
            for i in range(2):
                seconds, response = self.get(request)
                outcome.warmup_s.append(seconds)
                if response.status_code != 200:
                    return self._failed(outcome, response)
                outcome.response = _describe(response)
                if i == 0 and seconds > self.args.slow_after:
                    # One warm-up that long already shows the steady state; a second one and
                    # --runs timed runs would cost minutes per request.
                    outcome.slow = True
                    break
            runs = min(self.args.slow_runs, self.args.runs) if outcome.slow else self.args.runs
            cpu, busy, own = process_cpu(self.api.pid), machine_busy(), time.process_time()
            for _ in range(runs):
                seconds, response = self.get(request)
                if response.status_code != 200:
                    return self._failed(outcome, response)
                outcome.times_s.append(seconds)
            cpu = process_cpu(self.api.pid) - cpu
            own = time.process_time() - own
            outcome.cpu_other_s = max(0.0, machine_busy() - busy - cpu - own)
        except httpx.TimeoutException:
            outcome.status = "timeout"
            settled = self._settle()
            outcome.error = f"no answer within {self.args.timeout:g} s; " + (
                f"the API computed it {settled:.0f} s more"
                if settled is not None
                else "the API was still busy when the bench gave up waiting: later figures "
                "are disturbed"
            )
            return outcome
        except httpx.TransportError as exc:
            outcome.status = "failed"
            outcome.error = f"{type(exc).__name__}: {exc}; API log: {self.api.log_tail(500)}"
            return outcome
        ordered = sorted(outcome.times_s)
        outcome.runs = len(ordered)
        outcome.p50_ms = statistics.median(ordered) * 1000
        outcome.p95_ms = _quantile(ordered, 0.95) * 1000
        outcome.cpu_ms_per_request = cpu / runs * 1000
        return outcome

    def measure_pair(self, pair: Bench, request: Request) -> tuple[Outcome, Outcome]:
        """The request on both APIs, their timed runs interleaved (this one first on even runs,
        the pair first on odd ones), so that a machine growing slower or faster during the
        bench weighs on both alike. No slow mode: a pair is for requests that answer in
        seconds."""
        sides = (self, pair)
        outcomes = []
        for bench in sides:
            url = str(bench.client.build_request("GET", request.path, params=request.params).url)
            outcomes.append(Outcome(request.id, request.label, url))
        try:
            for _ in range(2):
                for bench, outcome in zip(sides, outcomes, strict=True):
                    seconds, response = bench.get(request)
                    outcome.warmup_s.append(seconds)
                    if response.status_code != 200:
                        return bench._failed(outcome, response), outcomes[1]
                    outcome.response = _describe(response)
            cpu = [process_cpu(b.api.pid) for b in sides]
            for i in range(self.args.runs):
                order = (0, 1) if i % 2 == 0 else (1, 0)
                for k in order:
                    seconds, response = sides[k].get(request)
                    if response.status_code != 200:
                        return sides[k]._failed(outcomes[k], response), outcomes[1 - k]
                    outcomes[k].times_s.append(seconds)
            cpu = [process_cpu(b.api.pid) - before for b, before in zip(sides, cpu, strict=True)]
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            for outcome in outcomes:
                outcome.status = "failed"
                outcome.error = f"{type(exc).__name__}: {exc}"
            return outcomes[0], outcomes[1]
        for outcome, used in zip(outcomes, cpu, strict=True):
            ordered = sorted(outcome.times_s)
            outcome.runs = len(ordered)
            outcome.p50_ms = statistics.median(ordered) * 1000
            outcome.p95_ms = _quantile(ordered, 0.95) * 1000
            outcome.cpu_ms_per_request = used / len(ordered) * 1000
        return outcomes[0], outcomes[1]

    def _failed(self, outcome: Outcome, response: httpx.Response) -> Outcome:
        outcome.status = "failed"
        outcome.response = _describe(response)
        outcome.error = f"HTTP {response.status_code}: {response.text[:500]}"
        return outcome

    def _settle(self, limit: float = 900.0) -> float | None:
        """After a timeout the API still computes the abandoned answer (a worker thread cannot
        be cancelled): wait until its CPU use stops, so it does not slow the next request down.
        Seconds it took, None if the API was still busy after `limit` seconds."""
        began = time.perf_counter()
        before = process_cpu(self.api.pid)
        while time.perf_counter() - began < limit:
            time.sleep(1.0)
            now = process_cpu(self.api.pid)
            if now - before < 0.05:
                return time.perf_counter() - began
            before = now
        return None


def _wait_for_quiet(limit: float, busy_cores: float = 0.25) -> float:
    """Wait up to `limit` s for the machine to go nearly idle (it is shared); what still runs
    during a request's timed runs is reported as cpu_other_s."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        before = machine_busy()
        time.sleep(0.5)
        if (machine_busy() - before) / 0.5 < busy_cores:
            break
    return time.perf_counter() - began


def cmd_run(args: argparse.Namespace) -> None:
    store = Path(args.store).resolve()
    if not store.is_dir():
        raise SystemExit(f"no store at {store}: build it first")
    label = args.label or store.name
    out = _out_path(args.out or f"bench/results/query-{label}.json")
    key = secrets.token_hex(32)
    port = _free_port()
    began = time.perf_counter()
    pair = _pair_of(args)
    with tempfile.TemporaryDirectory(prefix="query-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        base = {"clickhouse_url": f"chdb://{store}", "data_dir": str(tmp / "data")}
        code = _migrate(base, key, ROOT)
        if pair is not None:
            pair_base = {"clickhouse_url": f"chdb://{pair[1]}", "data_dir": str(tmp / "pair")}
            pair_code = _migrate(pair_base, key, pair[0])
        inspected = subprocess.run(
            [sys.executable, "-m", "bench.query_bench", "_inspect", "--store", str(store)],
            cwd=ROOT, env=child_env(), capture_output=True, text=True,
        )  # fmt: skip
        if inspected.returncode != 0:
            raise SystemExit(f"reading the store failed:\n{inspected.stderr[-2000:]}")
        counts = _last_json_line(inspected.stdout)
        max_ingested = datetime.fromisoformat(counts["max_ingested_at"])
        as_of = max_ingested + timedelta(seconds=args.as_of_after)
        if (wait := (as_of - datetime.now(UTC)).total_seconds() + 5) > 0:  # ≥ 5 s settled
            time.sleep(wait)
        requests = requests_for(args.agency, as_of.isoformat())
        if args.only:
            wanted = set(args.only.split(","))
            requests = [r for r in requests if r.id in wanted]
        with nats_server(tmp) as nats_url:
            env = child_env(
                **base,
                bootstrap_admin_key=key,
                nats_url=nats_url,
                api_port=str(port),
                api_page_cache_seconds="0",  # the pages measured as built, not from memory
            )
            api = Api(env, tmp / "api.log", f"http://127.0.0.1:{port}")
            pair_api = None
            if pair is not None:
                pair_port = _free_port()
                pair_env = child_env(
                    pair[0], **{**env_settings(env), **pair_base, "api_port": str(pair_port)}
                )
                pair_api = Api(pair_env, tmp / "pair.log", f"http://127.0.0.1:{pair_port}", pair[0])
            try:
                ready_s = api.start(args.ready_timeout)
                rss_at_start = _status_mb(api.pid, "VmRSS")
                if pair_api is not None:
                    pair_api.start(args.ready_timeout)
                outcomes, pair_outcomes = _measure_all(args, api, key, requests, began, pair_api)
                peak_rss = _status_mb(api.pid, "VmHWM")
                pair_rss = _status_mb(pair_api.pid, "VmHWM") if pair_api else None
                api_log = _api_log(api)
            finally:
                api.stop()
                if pair_api is not None:
                    pair_api.stop()
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "label": label,
        "store": str(store),
        "code": code,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "store_counts": counts,
        "build": _build_report(store),
        "settings": {
            "runs": args.runs,
            "slow_after_s": args.slow_after,
            "slow_runs": args.slow_runs,
            "timeout_s": args.timeout,
            "page_cache_seconds": 0,
            "agency": args.agency,
            "as_of": as_of.isoformat(),
        },
        "api": {
            "ready_seconds": ready_s,
            "rss_at_start_mb": rss_at_start,
            "peak_rss_mb": peak_rss,
            "log": api_log,
        },
        "requests": [asdict(o) for o in outcomes],
        "bench_seconds": time.perf_counter() - began,
    }
    if pair is not None:
        report["pair"] = {
            "code": pair_code,
            "store": str(pair[1]),
            "peak_rss_mb": pair_rss,
            "requests": [asdict(o) for o in pair_outcomes],
        }
    text = table(report)
    report["table"] = text
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(text)
    print(f"wrote {out}")


def _measure_all(
    args: argparse.Namespace,
    api: Api,
    key: str,
    requests: list[Request],
    began: float,
    pair_api: Api | None = None,
) -> tuple[list[Outcome], list[Outcome]]:
    """Each request's outcome on the API, and on the pair's API when there is one."""
    headers = {"Authorization": f"Bearer {key}"}
    outcomes: list[Outcome] = []
    pair_outcomes: list[Outcome] = []
    with (
        httpx.Client(base_url=api.url, headers=headers, timeout=args.timeout) as client,
        httpx.Client(
            base_url=(pair_api or api).url, headers=headers, timeout=args.timeout
        ) as pair_client,
    ):
        bench = Bench(args, api, client)
        pair = Bench(args, pair_api, pair_client) if pair_api is not None else None
        for request in requests:
            if args.budget and time.perf_counter() - began > args.budget:
                skipped = Outcome(request.id, request.label, request.path, status="skipped")
                skipped.error = f"time budget of {args.budget:.0f} s spent"
                outcomes.append(skipped)
                continue
            _wait_for_quiet(args.quiet_wait)
            print(f"  {request.label} …", end="", file=sys.stderr, flush=True)
            if pair is None:
                outcome = bench.measure(request)
            else:
                outcome, paired = bench.measure_pair(pair, request)
                pair_outcomes.append(paired)
            outcomes.append(outcome)
            done = (
                f" p50 {outcome.p50_ms:,.0f} ms, {outcome.runs} runs"
                if outcome.status == "ok"
                else f" {outcome.status}: {outcome.error}"
            )
            if pair_outcomes and pair_outcomes[-1].status == "ok":
                done += f" (pair {pair_outcomes[-1].p50_ms:,.0f} ms)"
            print(done, file=sys.stderr, flush=True)
    return outcomes, pair_outcomes


def _pair_of(args: argparse.Namespace) -> tuple[Path, Path] | None:
    """(checkout, store) of the code measured side by side with this one, if any."""
    if not args.pair_code:
        return None
    root, store = Path(args.pair_code).resolve(), Path(args.pair_store or "").resolve()
    if not (root / "services").is_dir():
        raise SystemExit(f"--pair-code {root}: not a checkout of this project")
    if not args.pair_store or not store.is_dir() or store == Path(args.store).resolve():
        raise SystemExit(
            "--pair-store: a copy of the store (a chDB directory opens in one process at a time)"
        )
    return root, store


def _migrate(base: dict[str, str], key: str, root: Path) -> str:
    """`motcua migrate` of the checkout `root` on a store; where its code is imported from. The
    bootstrap key is stored the documented way, on the admin connection: `motcua api` reads
    keys read-only and would only warn."""
    env = child_env(root, **base, bootstrap_admin_key=key)
    code = code_location(env, root)
    print(f"code under test: {code}", file=sys.stderr, flush=True)
    migrated = subprocess.run(
        [sys.executable, "-m", cli_module(root), "migrate"],
        cwd=root, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if migrated.returncode != 0:
        raise SystemExit(f"motcua migrate failed:\n{migrated.stderr[-2000:]}")
    return code


def env_settings(env: dict[str, str]) -> dict[str, str]:
    """The MOTCUA_* settings of a child's environment, as child_env takes them."""
    return {k[len("MOTCUA_") :].lower(): v for k, v in env.items() if k.startswith("MOTCUA_")}


def _api_log(api: Api) -> list[str]:
    """Not the access log: what the API said besides answering 200."""
    return [
        line
        for line in api.log_tail(200_000).splitlines()
        if '" 200 OK' not in line and "GET /readyz" not in line
    ][-40:]


def _build_report(store: Path) -> dict[str, Any] | None:
    found = store.with_name(store.name + ".build.json")
    if not found.exists():
        return None
    built: dict[str, Any] = json.loads(found.read_text())
    return {k: built.get(k) for k in ("layout", "counts", "code", "when")}


def table(report: dict[str, Any]) -> str:
    counts = report["store_counts"]
    years = counts["dossiers_received_by_year"]
    layout = (report.get("build") or {}).get("layout") or {}
    lines = [
        f"query bench — {report['label']}: {report['store']}",
        f"store: {counts['events']:,} events; dossiers received by year: "
        + ", ".join(f"{y} {n:,}" for y, n in years.items()),
    ]
    if layout.get("description"):
        lines.append(f"layout: {layout['description']}")
    lines.append(f"code: {report['code']}; page cache off; agency {report['settings']['agency']}")
    if "pair" in report:
        return "\n".join([*lines, *_pair_table(report)])
    lines += [
        "",
        "| request | p50 ms | p95 ms | CPU ms/request | runs | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in report["requests"]:
        note = []
        if r["slow"]:
            note.append(f"slow: first warm-up {r['warmup_s'][0]:.1f} s, {r['runs']} runs")
        if r["status"] != "ok":
            note.append(f"{r['status'].upper()}: {(r['error'] or '')[:120]}")
        if r["cpu_other_s"] > 1.0:
            note.append(f"other load {r['cpu_other_s']:.1f} CPU-s")
        if r["status"] == "ok":
            lines.append(
                f"| {r['label']} | {r['p50_ms']:,.0f} | {r['p95_ms']:,.0f} | "
                f"{r['cpu_ms_per_request']:,.0f} | {r['runs']} | {'; '.join(note)} |"
            )
        else:
            lines.append(f"| {r['label']} | – | – | – | {r['runs']} | {'; '.join(note)} |")
    api = report["api"]
    lines += [
        "",
        f"API peak RSS (VmHWM) {api['peak_rss_mb'] or 0:,.0f} MB "
        f"(RSS when ready {api['rss_at_start_mb'] or 0:,.0f} MB, ready in "
        f"{api['ready_seconds']:.1f} s); bench took {report['bench_seconds'] / 60:.1f} min",
    ]
    return "\n".join(lines)


def _pair_table(report: dict[str, Any]) -> list[str]:
    """Both APIs' figures side by side: runs interleaved, so the ratio is the comparison."""
    pair = report["pair"]
    lines = [
        f"pair: {pair['code']} on {pair['store']} (timed runs interleaved with this code's)",
        "",
        "| request | p50 / p95 ms | CPU ms | pair p50 / p95 ms | pair CPU ms | p50 this/pair |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r, q in zip(report["requests"], pair["requests"], strict=False):
        if r["status"] != "ok" or q["status"] != "ok":
            error = r["error"] or q["error"] or r["status"]
            lines.append(f"| {r['label']} | – | – | – | – | {error[:120]} |")
            continue
        lines.append(
            f"| {r['label']} | {r['p50_ms']:,.0f} / {r['p95_ms']:,.0f} | "
            f"{r['cpu_ms_per_request']:,.0f} | {q['p50_ms']:,.0f} / {q['p95_ms']:,.0f} | "
            f"{q['cpu_ms_per_request']:,.0f} | {r['p50_ms'] / q['p50_ms']:.2f} |"
        )
    api = report["api"]
    lines += [
        "",
        f"API peak RSS (VmHWM) {api['peak_rss_mb'] or 0:,.0f} MB, pair "
        f"{pair['peak_rss_mb'] or 0:,.0f} MB; bench took {report['bench_seconds'] / 60:.1f} min",
    ]
    return lines


def _out_path(value: str) -> Path:
    out = Path(value)
    out = out if out.is_absolute() else ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


# --- command line ------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.query_bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build a store, then `motcua replay` it")
    b.add_argument("--dossiers", type=int, required=True, help="total, all years")
    b.add_argument("--store", required=True, help="a new directory (chdb://STORE)")
    b.add_argument("--per-year", type=int, default=1_000_000, help="dossiers per year")
    b.add_argument(
        "--simulated",
        type=int,
        default=0,
        help="dossiers of the base year made by the simulator (default: all of them); the rest "
        "are in-year copies",
    )
    b.add_argument("--seed", type=int, default=7860)
    b.add_argument("--no-plans", action="store_true", help="skip the one plan evaluation")
    b.add_argument(
        "--from-store",
        help="start from a copy of this one-year store (built by this bench, same --per-year and "
        "--seed) and only add the earlier years",
    )
    b.add_argument("--out", help="also write the build report here")
    b.set_defaults(func=cmd_build)

    r = sub.add_parser("run", help="time the API's requests on a built store")
    r.add_argument("--store", required=True)
    r.add_argument("--runs", type=int, default=30, help="timed runs per request")
    r.add_argument("--out", help="default bench/results/query-<label>.json")
    r.add_argument("--label", help="default: the store directory's name")
    r.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    r.add_argument(
        "--slow-after",
        type=float,
        default=10.0,
        help="a request whose first warm-up takes longer gets --slow-runs timed runs",
    )
    r.add_argument("--slow-runs", type=int, default=3)
    r.add_argument("--agency", default="STNMT", help="the one agency (a department code)")
    r.add_argument("--only", help="comma-separated request ids (see requests_for)")
    r.add_argument("--budget", type=float, default=0, help="stop starting requests after N s")
    r.add_argument("--as-of-after", type=float, default=3.0, help="as_of = max(ingested_at) + N s")
    r.add_argument("--ready-timeout", type=float, default=300.0)
    r.add_argument(
        "--pair-code",
        help="another checkout (a worktree of a baseline commit): its API runs beside this one "
        "and each request's timed runs alternate between the two",
    )
    r.add_argument("--pair-store", help="with --pair-code: a copy of --store for its API")
    r.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="before each request, wait up to this many seconds for other load to stop",
    )
    r.set_defaults(func=cmd_run)

    e = sub.add_parser(
        "evaluate", help="time the metrics service's full evaluation (figures, plans) on a store"
    )
    e.add_argument("--store", required=True)
    e.add_argument("--rounds", type=int, default=2, help="the first is cold, the rest warm")
    e.add_argument("--out", help="also write the report here")
    e.set_defaults(func=cmd_evaluate)

    internal = sub.add_parser("_build-store", help=argparse.SUPPRESS)
    internal.add_argument("--store", required=True)
    internal.add_argument("--dossiers", type=int, required=True)
    internal.add_argument("--per-year", type=int, required=True)
    internal.add_argument("--simulated", type=int, required=True)
    internal.add_argument("--seed", type=int, required=True)
    internal.add_argument("--no-plans", action="store_true")
    internal.add_argument("--from-base", action="store_true")
    internal.set_defaults(func=phase_build_store)
    inspect = sub.add_parser("_inspect", help=argparse.SUPPRESS)
    inspect.add_argument("--store", required=True)
    inspect.set_defaults(func=phase_inspect)
    evaluate = sub.add_parser("_evaluate", help=argparse.SUPPRESS)
    evaluate.add_argument("--store", required=True)
    evaluate.add_argument("--rounds", type=int, required=True)
    evaluate.set_defaults(func=phase_evaluate)

    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
