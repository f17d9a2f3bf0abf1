"""The org tree in use at a date, from the agency reference records (agencies_current).

Figures roll up along this tree: a parent's figure covers its descendants. The tree of 2024 has
province → districts → communes; from 1/7/2025 the communes hang directly under the province, so
always ask for the tree at the date a figure is about. `version` names the exact records used,
for provenance next to a figure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from clickhouse_connect.driver.client import Client

from core.reference import memo

_QUERY = """
SELECT agency_code, name, level, parent_code, valid_from, valid_to, toString(event_id)
FROM agencies_current
WHERE valid_from <= {at:Date32} AND (valid_to IS NULL OR valid_to > {at:Date32})
ORDER BY agency_code, valid_from
"""


@dataclass(frozen=True, slots=True)
class OrgUnit:
    code: str
    name: str
    level: str  # province | district | commune
    parent_code: str | None
    valid_from: date
    valid_to: date | None
    event_id: str = ""


class OrgTree:
    """Agencies valid at `at`. Lookups of a code not in the tree raise KeyError."""

    def __init__(self, units: Iterable[OrgUnit], at: date, version: str | None = None) -> None:
        self.at = at
        self._units: dict[str, OrgUnit] = {}
        for unit in sorted(units, key=lambda u: (u.code, u.valid_from)):
            # Overlapping versions are a data error; the one that started last is in force.
            self._units[unit.code] = unit
        self._children: dict[str, list[str]] = {code: [] for code in self._units}
        for unit in self._units.values():
            if unit.parent_code in self._units:
                self._children[unit.parent_code].append(unit.code)
        self.version = version or _version(self._units.values())

    @classmethod
    def load(cls, client: Client, at: date) -> OrgTree:
        """The tree at `at`, read again only when the agency records change (memo.py)."""
        return memo.load(client, "agencies", at, lambda: cls._read(client, at))

    @classmethod
    def _read(cls, client: Client, at: date) -> OrgTree:
        rows = client.query(_QUERY, parameters={"at": at}).result_rows
        return cls((OrgUnit(*row) for row in rows), at)

    def __contains__(self, code: object) -> bool:
        return code in self._units

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._units))

    def __len__(self) -> int:
        return len(self._units)

    def unit(self, code: str) -> OrgUnit:
        return self._units[code]

    def name(self, code: str) -> str:
        return self._units[code].name

    def level(self, code: str) -> str:
        return self._units[code].level

    def parent(self, code: str) -> str | None:
        """The parent in this tree; None for a root (or a unit whose parent is not valid then)."""
        parent = self._units[code].parent_code
        return parent if parent in self._units else None

    def children(self, code: str) -> list[str]:
        return sorted(self._children[code])

    def roots(self) -> list[str]:
        return sorted(c for c in self._units if self.parent(c) is None)

    def descendants(self, code: str) -> set[str]:
        """The unit and everything under it."""
        found = {code}
        stack = list(self._children[code])
        while stack:
            child = stack.pop()
            if child not in found:  # a cycle in bad data must not loop forever
                found.add(child)
                stack.extend(self._children[child])
        return found

    def path(self, code: str) -> list[str]:
        """From the root down to the unit, e.g. [KHANHHOA, NHATRANG, XA_VINHLUONG]."""
        path = [code]
        parent = self.parent(code)
        while parent is not None and parent not in path:
            path.append(parent)
            parent = self.parent(parent)
        return path[::-1]


def _version(units: Iterable[OrgUnit]) -> str:
    """A digest of the records used: equal versions mean the very same tree."""
    digest = hashlib.sha256()
    for unit in sorted(units, key=lambda u: u.code):
        digest.update(f"{unit.code}|{unit.valid_from.isoformat()}|{unit.event_id}\n".encode())
    return digest.hexdigest()[:16]
