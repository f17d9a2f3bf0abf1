"""Expand a panel's SQL the way Grafana and the ClickHouse plugin do, so tests (and
`motcua grafana check`) can run exactly what the plugin would send.

The order is the plugin's: the frontend first drops `$__conditionalAll(cond, $var)` to `1=1` when
the variable is "All" (or empty), then interpolates the template variables; the backend then
expands the time macros (grafana/clickhouse-datasource pkg/macros/macros.go, tech-notes §1).

Variable formats follow Grafana's: `${v:singlequote}` quotes each value and escapes `'` as `\\'`;
`${v:sqlstring}` doubles `'`; `${v:csv}` and `${v:raw}` join with commas; a bare `$v` or `${v}`
uses the plugin's default formatter: a multi-value variable becomes `'a','b'` (without escaping),
a single value is inserted raw. "All" without a custom all-value means every option.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

ALL = "$__all"


@dataclass(frozen=True)
class VariableValue:
    selected: tuple[str, ...]  # (ALL,) for "All"
    options: tuple[str, ...] = ()  # every value the variable offers (what "All" means)
    multi: bool = True

    @property
    def is_all(self) -> bool:
        return ALL in self.selected or not self.selected

    def values(self) -> tuple[str, ...]:
        return self.options if ALL in self.selected else self.selected


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval_s: int = 60  # the panel interval Grafana computed; the plugin uses at least 1 s

    @property
    def from_s(self) -> int:
        return int(self.start.astimezone(UTC).timestamp())

    @property
    def to_s(self) -> int:
        return int(self.end.astimezone(UTC).timestamp())


class MacroError(ValueError):
    """The SQL uses a macro or variable the plugin would not expand."""


def expand(sql: str, variables: Mapping[str, VariableValue], time: TimeRange) -> str:
    sql = _conditional_all(sql, variables)
    sql = _variables(sql, variables)
    return _time_macros(sql, time)


def _call_args(sql: str, open_at: int) -> tuple[list[str], int]:
    """Arguments of the call whose '(' is at open_at, split at top-level commas; and the index
    after the closing ')'. Quotes and nested parentheses are respected."""
    depth, quote, args, start = 0, "", [], open_at + 1
    i = open_at
    while i < len(sql):
        c = sql[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i].strip())
                return args, i + 1
        elif c == "," and depth == 1:
            args.append(sql[start:i].strip())
            start = i + 1
        i += 1
    raise MacroError(f"unbalanced parentheses after position {open_at}")


def _replace_calls(sql: str, name: str, render: Callable[[list[str]], str]) -> str:
    pattern = re.compile(re.escape(name) + r"\s*\(")
    while match := pattern.search(sql):
        args, end = _call_args(sql, match.end() - 1)
        sql = sql[: match.start()] + render(args) + sql[end:]
    return sql


def _conditional_all(sql: str, variables: Mapping[str, VariableValue]) -> str:
    def render(args: list[str]) -> str:
        if len(args) != 2 or not args[1].startswith("$"):
            raise MacroError(f"$__conditionalAll needs (condition, $variable), got {args}")
        name = args[1].lstrip("$").strip("{}")
        if name not in variables:
            raise MacroError(f"unknown variable ${name}")
        return "1=1" if variables[name].is_all else args[0]

    return _replace_calls(sql, "$__conditionalAll", render)


def _format(value: VariableValue, fmt: str | None) -> str:
    values = value.values()
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    if fmt in ("csv", "raw"):
        return ",".join(values)
    if fmt is not None:
        raise MacroError(f"format :{fmt} is not supported here")
    if value.multi or len(values) != 1:
        return ",".join(f"'{v}'" for v in values)
    return values[0]


_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")


def _variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name not in variables:
            raise MacroError(f"unknown variable ${name}")
        return _format(variables[name], match.group(2))

    return _VARIABLE.sub(sub, sql)


def _time_macros(sql: str, t: TimeRange) -> str:
    f, to, n = t.from_s, t.to_s, max(1, t.interval_s)
    day_f = t.start.astimezone(UTC).strftime("%Y-%m-%d")
    day_t = t.end.astimezone(UTC).strftime("%Y-%m-%d")
    calls: dict[str, Callable[[list[str]], str]] = {
        "$__timeFilter_ms": lambda a: (
            f"{a[0]} >= fromUnixTimestamp64Milli({f * 1000}) AND "
            f"{a[0]} <= fromUnixTimestamp64Milli({to * 1000})"
        ),
        "$__timeFilter": lambda a: f"{a[0]} >= toDateTime({f}) AND {a[0]} <= toDateTime({to})",
        "$__dateFilter": lambda a: f"{a[0]} >= toDate('{day_f}') AND {a[0]} <= toDate('{day_t}')",
        "$__timeFrom": lambda a: f"{a[0]} >= toDateTime({f})",
        "$__timeTo": lambda a: f"{a[0]} <= toDateTime({to})",
        "$__timeInterval_ms": lambda a: (
            f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {n * 1000} millisecond)"
        ),
        "$__timeInterval": lambda a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {n} second)",
    }
    for name, render in calls.items():
        sql = _replace_calls(sql, name, render)
    plain = {
        "$__fromTime_ms": f"fromUnixTimestamp64Milli({f * 1000})",
        "$__toTime_ms": f"fromUnixTimestamp64Milli({to * 1000})",
        "$__fromTime": f"toDateTime({f})",
        "$__toTime": f"toDateTime({to})",
        "$__interval_s": str(n),
    }
    for name, text in plain.items():
        sql = re.sub(re.escape(name) + r"\b", text, sql)
    if leftover := re.search(r"\$__\w+", sql):
        raise MacroError(f"macro {leftover.group(0)} is not expanded by the plugin")
    return sql
