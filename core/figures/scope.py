"""Which agencies a figure covers: an agency means itself and everything under it in the org tree
valid at the period's end, so a 2022 figure uses the 2022 tree and a 2026 figure the tree after
the 1/7/2025 restructuring."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from clickhouse_connect.driver.client import Client

from core.reference.org_tree import OrgTree


@dataclass(frozen=True)
class Scope:
    agencies: tuple[str, ...]  # every agency code the figure counts; () means all
    requested: tuple[str, ...]
    tree: OrgTree

    @property
    def tree_version(self) -> str:
        return self.tree.version


def resolve(client: Client, requested: tuple[str, ...], at: date, rollup: bool = True) -> Scope:
    tree = OrgTree.load(client, at)
    if not requested:
        return Scope((), (), tree)
    codes: set[str] = set()
    for code in requested:
        # A code unknown to the tree (no reference data yet, or an integrator's own code) still
        # counts its own dossiers.
        codes |= tree.descendants(code) if rollup and code in tree else {code}
    return Scope(tuple(sorted(codes)), requested, tree)
