"""Find, parse and validate plan files.

Plans are YAML files (*.yaml, *.yml) in the package folder `core/plans/data/`, plus those in
the directory named by the environment variable `MOTCUA_PLANS_DIR` when it is set (a deployment's
own plans, without rebuilding the image). Every file is validated on load; any error is a
`PlanError` naming the file and the line, e.g.

    core/plans/data/kh-7860-2022.yaml:42: target 'A.IV.5-land-late': unknown metric
    'late_rat' (did you mean 'late_rate'?)

Agency codes, domains and levels are checked against reference data: by default the shipped
seed (core/reference/data/khanhhoa.json); pass `reference=` to check against a real catalogue.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]
from pydantic import ValidationError

from core.plans.checks import Reference, YamlPath, check, suggest
from core.plans.model import AgencyQuota, Plan, Reason, Scope, Target, Unmeasurable

PLANS_DIR_ENV = "MOTCUA_PLANS_DIR"
_PACKAGED = "core/plans/data"
_SUFFIXES = (".yaml", ".yml")

# Every key a plan file may use, to suggest the intended one for a misspelt key.
_KEYS = sorted(
    {"from", "to"}
    | {
        name
        for model in (Plan, Target, Scope, AgencyQuota, Unmeasurable, Reason)
        for name in model.model_fields
    }
)


class PlanError(ValueError):
    """A plan file is invalid; str() is "file:line: message"."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


def load_plans(
    extra_dir: Path | None = None, *, reference: Reference | None = None, packaged: bool = True
) -> dict[str, Plan]:
    """Every plan, keyed "id@version": the packaged ones (unless `packaged=False`) and those in
    `extra_dir`, or in $MOTCUA_PLANS_DIR when no `extra_dir` is given. The same id@version in
    two files is an error, never a silent override."""
    ref = reference or Reference.seed()
    plans: dict[str, Plan] = {}
    defined_in: dict[str, str] = {}
    for file, text in _sources(extra_dir, packaged):
        plan, lines = _parse(text, file, ref)
        if plan.key in plans:
            raise PlanError(
                file,
                lines.line(("id",)),
                f"plan '{plan.key}' is already defined in {defined_in[plan.key]}; give this one "
                "another id or version",
            )
        plans[plan.key] = plan
        defined_in[plan.key] = file
    return plans


def load_plan_file(path: Path, *, reference: Reference | None = None) -> Plan:
    """One plan file, validated (e.g. to check a new plan before deploying it)."""
    return parse_plan(path.read_text(encoding="utf-8"), str(path), reference=reference)


def parse_plan(text: str, name: str, *, reference: Reference | None = None) -> Plan:
    """A plan from its YAML text, validated; errors name `name` and the line."""
    return _parse(text, name, reference or Reference.seed())[0]


def check_new_plan(
    text: str, name: str, loaded: Mapping[str, Plan], *, reference: Reference | None = None
) -> Plan:
    """A plan about to be added beside `loaded` ones: valid, and not an id@version that is
    already defined (which load_plans would refuse at the next start)."""
    plan, lines = _parse(text, name, reference or Reference.seed())
    if plan.key in loaded:
        raise PlanError(
            name,
            lines.line(("id",)),
            f"plan '{plan.key}' is already loaded; a changed plan gets a new version",
        )
    return plan


def plans_directory(extra_dir: Path | None) -> Path | None:
    """The directory read beside the packaged plans: `extra_dir`, else $MOTCUA_PLANS_DIR."""
    if extra_dir is not None:
        return extra_dir
    env_dir = os.environ.get(PLANS_DIR_ENV)
    return Path(env_dir) if env_dir else None


def is_plan_file(name: str) -> bool:
    return name.endswith(_SUFFIXES) and not name.startswith(".")


def _sources(extra_dir: Path | None, packaged: bool) -> list[tuple[str, str]]:
    """(name shown in errors, text) of every plan file, packaged ones first, each folder sorted."""
    sources: list[tuple[str, str]] = []
    if packaged:
        folder = resources.files("core.plans") / "data"
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if is_plan_file(entry.name):
                sources.append((f"{_PACKAGED}/{entry.name}", entry.read_text(encoding="utf-8")))
    directory = plans_directory(extra_dir)
    if directory is not None:
        if not directory.is_dir():
            raise NotADirectoryError(f"plans directory {directory} is not a directory")
        for path in sorted(directory.iterdir()):
            if is_plan_file(path.name):
                sources.append((str(path), path.read_text(encoding="utf-8")))
    return sources


def _parse(text: str, file: str, ref: Reference) -> tuple[Plan, _Lines]:
    data, lines = _compose(text, file)
    if not isinstance(data, dict):
        raise PlanError(file, 1, "a plan file is a mapping (id, version, title, …, targets)")
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, data, lines, file) from None
    problems = check(plan, ref, lines.line)
    if problems:
        line, message = min(problems)
        raise PlanError(file, line, message)
    return plan, lines


class _Lines:
    """The line (1-based) of every key and item of the YAML document, by path."""

    def __init__(self, root: Any, file: str) -> None:
        self.file = file
        self._lines: dict[YamlPath, int] = {}
        self._walk(root, ())

    def _walk(self, node: Any, path: YamlPath) -> None:
        self._lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key, line = str(key_node.value), key_node.start_mark.line + 1
                if key in seen:  # PyYAML would silently keep the last one
                    raise PlanError(
                        self.file, line, f"duplicate key '{key}' (first on line {seen[key]})"
                    )
                seen[key] = line
                self._lines[(*path, key)] = line  # the key's line is where an author looks
                self._walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def line(self, path: YamlPath) -> int:
        """The line of `path`, or of its nearest ancestor present in the file."""
        for end in range(len(path), -1, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return 1


# A plan is a few pages of targets (the packaged KH 7860 is 20 KB); anything far larger is not one.
MAX_PLAN_BYTES = 256 * 1024


def _refuse_aliases(text: str, file: str) -> None:
    """Plans need no anchors or aliases, and a few hundred bytes of nested aliases expand into
    gigabytes (a "billion laughs": 21.7 s and +1.4 GB for a 370-byte file). Refused from the
    event stream, before anything is composed, expanded or walked."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        alias = isinstance(event, yaml.AliasEvent)
        if alias or getattr(event, "anchor", None) is not None:
            what = f"alias *{event.anchor}" if alias else f"anchor &{event.anchor}"
            raise PlanError(
                file, event.start_mark.line + 1, f"{what}: plan files may not use YAML anchors"
            )


def _compose(text: str, file: str) -> tuple[Any, _Lines]:
    """The document's data and the line of each of its parts, from one composition (after a
    scan of the parser's events for anchors and aliases)."""
    size = len(text.encode("utf-8"))
    if size > MAX_PLAN_BYTES:
        raise PlanError(file, 1, f"{size:,} bytes: a plan file is at most {MAX_PLAN_BYTES:,}")
    loader = yaml.SafeLoader(text)
    try:
        _refuse_aliases(text, file)
        node = loader.get_single_node()
        if node is None:
            raise PlanError(file, 1, "the file is empty")
        return loader.construct_document(node), _Lines(node, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = mark.line + 1 if mark is not None else 1
        raise PlanError(file, where, f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise PlanError(file, 1, f"YAML error: {exc}") from None
    finally:
        loader.dispose()


def _validation_error(
    exc: ValidationError, data: dict[str, Any], lines: _Lines, file: str
) -> PlanError:
    errors = exc.errors()
    # An error about a list whose item failed (targets: "at least 1 item" when the only target
    # is invalid) is an echo of the item's own error, which names the right line: drop it.
    locs = [tuple(e["loc"]) for e in errors]
    errors = [
        e
        for e in errors
        if not any(len(o) > len(e["loc"]) and o[: len(e["loc"])] == tuple(e["loc"]) for o in locs)
    ]
    # A missing field last: it is often the echo of a misspelt key, which is the better message.
    err = min(errors, key=lambda e: (e["type"] == "missing", lines.line(tuple(e["loc"]))))
    loc = tuple(err["loc"])
    who, rest = _who(loc, data)
    # Drop the period's union tags, which are no keys of the file.
    rest = tuple(p for k, p in enumerate(rest) if k == 0 or rest[k - 1] != "period")
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden" and rest:
        message = f"unknown field '{rest[-1]}'{suggest(str(rest[-1]), _KEYS)}"
        rest = rest[:-1]
    fields = ".".join(str(p) for p in rest)
    return PlanError(file, lines.line(loc), f"{who}{fields + ': ' if fields else ''}{message}")


def _who(loc: tuple[Any, ...], data: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """("target 'x': ", the fields after the target) for an error inside a target or an
    unmeasurable entry; ("", loc) otherwise."""
    if len(loc) >= 2 and loc[0] in ("targets", "unmeasurable") and isinstance(loc[1], int):
        items = data.get(loc[0])
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        name = item.get("id") if isinstance(item, dict) else None
        kind = "target" if loc[0] == "targets" else "unmeasurable"
        label = f"'{name}'" if name else f"#{loc[1] + 1}"
        return f"{kind} {label}: ", loc[2:]
    return "", loc
