"""The procedure (TTHC) catalogue in force at a date, from procedures_current.

The facts the 766 index needs and dossier events do not carry: publication and legal-basis dates,
publication in the national database, the 7 parts, online level and payment integration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from clickhouse_connect.driver.client import Client

from core.reference import memo

_QUERY = """
SELECT procedure_code, name, domain_code, processing_days, processing_unit, fee_bearing,
    paper_result_required, online_level, full_online_eligible, online_payment_integrated,
    levels, decision_date, legal_basis_effective_date, public_in_national_db_at,
    parts_complete, valid_from, valid_to, toString(event_id)
FROM procedures_current
WHERE valid_from <= {at:Date32} AND (valid_to IS NULL OR valid_to > {at:Date32})
ORDER BY procedure_code, valid_from
"""


@dataclass(frozen=True, slots=True)
class ProcedureInfo:
    code: str  # national code, e.g. 1.004227
    name: str
    domain_code: str
    processing_days: int
    processing_unit: str  # working_day | calendar_day
    fee_bearing: bool
    paper_result_required: bool
    online_level: str  # full (toàn trình) | partial (một phần) | none
    full_online_eligible: bool
    online_payment_integrated: bool
    levels: tuple[str, ...]
    decision_date: date
    legal_basis_effective_date: date
    public_in_national_db_at: date | None
    parts_complete: bool
    valid_from: date
    valid_to: date | None
    event_id: str = ""

    @property
    def online(self) -> bool:
        """Offered as an online public service (toàn trình or một phần)."""
        return self.online_level != "none"


def normalize_code(code: str) -> str:
    """1-004227 and 1_004227 (subject and simulator forms) → 1.004227, the national form."""
    return code.replace("-", ".").replace("_", ".")


class Catalog:
    """Procedures valid at `at`, looked up by national code (or its dashed/underscored form)."""

    def __init__(self, procedures: Iterable[ProcedureInfo], at: date) -> None:
        self.at = at
        self._by_code: dict[str, ProcedureInfo] = {}
        for p in sorted(procedures, key=lambda p: (p.code, p.valid_from)):
            self._by_code[p.code] = p  # overlapping versions: the one that started last
        self._normalized = {normalize_code(c): p for c, p in self._by_code.items()}
        self.version = _version(self._by_code.values())

    @classmethod
    def load(cls, client: Client, at: date) -> Catalog:
        """The catalogue at `at`, read again only when the procedure records change (memo.py)."""
        return memo.load(client, "procedures", at, lambda: cls._read(client, at))

    @classmethod
    def _read(cls, client: Client, at: date) -> Catalog:
        rows = client.query(_QUERY, parameters={"at": at}).result_rows
        return cls((_info(row) for row in rows), at)

    def get(self, code: str) -> ProcedureInfo | None:
        return self._by_code.get(code) or self._normalized.get(normalize_code(code))

    def __getitem__(self, code: str) -> ProcedureInfo:
        found = self.get(code)
        if found is None:
            raise KeyError(code)
        return found

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.get(code) is not None

    def __iter__(self) -> Iterator[ProcedureInfo]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)


def _info(row: Sequence[Any]) -> ProcedureInfo:
    (code, name, domain, days, unit, fee, paper, level, eligible, payment, levels) = row[:11]
    (decision, legal, public, parts, valid_from, valid_to, event_id) = row[11:]
    return ProcedureInfo(
        code=code,
        name=name,
        domain_code=domain,
        processing_days=int(days),
        processing_unit=unit,
        fee_bearing=bool(fee),
        paper_result_required=bool(paper),
        online_level=level,
        full_online_eligible=bool(eligible),
        online_payment_integrated=bool(payment),
        levels=tuple(levels),
        decision_date=decision,
        legal_basis_effective_date=legal,
        public_in_national_db_at=public,
        parts_complete=bool(parts),
        valid_from=valid_from,
        valid_to=valid_to,
        event_id=event_id,
    )


def _version(procedures: Iterable[ProcedureInfo]) -> str:
    digest = hashlib.sha256()
    for p in procedures:
        digest.update(f"{p.code}|{p.valid_from.isoformat()}|{p.event_id}\n".encode())
    return digest.hexdigest()[:16]
