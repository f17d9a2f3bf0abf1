"""How long `motcua --help` and every subcommand's `--help` take, and which imports cost most.

    python -m bench.cli_bench                # ~1 min; writes bench/results/cli.json
    python -m bench.cli_bench --runs 3 --top 15

Each command runs `--runs` times as a fresh process (the `motcua` console script when it is on
PATH, else `python -m motcua.cli`); the table shows the median wall time and the spread. Then
`python -X importtime` of `motcua --help` and `motcua up --help` lists the packages their imports
spent most time in and how many modules each left loaded. A busy machine
inflates every figure alike: compare runs taken with little other load (`uptime` is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def command_prefix() -> list[str]:
    script = shutil.which("motcua")
    return [script] if script else [sys.executable, "-m", "motcua.cli"]


def subcommands() -> list[list[str]]:
    """Every command path of the parser: [], ["up"], ["keys"], ["keys", "create"], …"""
    from motcua.cli import build_parser

    found: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        found.append(path)
        for action in parser._actions:  # argparse keeps its subparsers here only
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, [*path, name])

    walk(build_parser(), [])
    return found


def time_once(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def heaviest_imports(path: list[str], top: int) -> dict[str, Any]:
    """`-X importtime` of one `--help`: import time per top-level package (the self times of its
    modules, summed, so nothing is counted twice), and how many modules it left loaded."""
    code = (
        "import sys\n"
        "from motcua.cli import main\n"
        "try:\n"
        f"    main({[*path, '--help']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(len(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    by_package: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        package = name.strip().split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(own) / 1e6
    heaviest = sorted(by_package.items(), key=lambda item: item[1], reverse=True)
    modules = int(done.stdout.strip().splitlines()[-1])
    return {
        "command": path,
        "modules_loaded": modules,
        "import_s": sum(by_package.values()),
        "heaviest": heaviest[:top],
    }


def run(runs: int, top: int) -> dict[str, Any]:
    prefix = command_prefix()
    lines = []
    for path in subcommands():
        samples = [time_once([*prefix, *path, "--help"]) for _ in range(runs)]
        lines.append(
            {
                "command": " ".join(["motcua", *path, "--help"]),
                "median_s": statistics.median(samples),
                "min_s": min(samples),
                "max_s": max(samples),
            }
        )
    imports = [heaviest_imports(path, top) for path in ([], ["up"])]
    return {"runs": runs, "prefix": prefix, "lines": lines, "imports": imports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per command (median)")
    parser.add_argument("--top", type=int, default=10, help="imports listed per command")
    parser.add_argument("--out", type=Path, default=Path("bench/results/cli.json"))
    args = parser.parse_args()
    load = os.getloadavg()
    result = run(args.runs, args.top) | {"loadavg_before": load}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"| {'command':<42} | median s | min s | max s |")
    print(f"|{'-' * 44}|---------:|------:|------:|")
    for line in result["lines"]:
        print(
            f"| {line['command']:<42} | {line['median_s']:8.2f} | {line['min_s']:5.2f} "
            f"| {line['max_s']:5.2f} |"
        )
    for entry in result["imports"]:
        command = " ".join(["motcua", *entry["command"], "--help"])
        print(
            f"\n{command}: {entry['modules_loaded']} modules loaded, "
            f"{entry['import_s']:.2f} s importing; heaviest packages (own time of their modules):"
        )
        for name, seconds in entry["heaviest"]:
            print(f"  {seconds:6.3f} s  {name}")
    print(
        f"\nmedians of {args.runs} processes; load average before: "
        f"{' '.join(f'{x:.2f}' for x in load)}; written to {args.out}"
    )


if __name__ == "__main__":
    main()
