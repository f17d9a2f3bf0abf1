"""Reference data for Khánh Hòa's one-stop shop: agencies, domains (lĩnh vực), procedures (TTHC).

The org tree and the TTHC catalogue come from the seed that `motcua up` loads
(core/reference/data/khanhhoa.json), versions and all: the tree before 1/7/2025 (province →
district → commune) and the one after (merged communes and wards directly under the province), so
simulated items of a date sit in the tree the figures of that date roll up through. What the seed
does not carry (volumes, a department's domains, fee amounts) comes from `profiles`.

Labels are the one place Vietnamese appears for these codes: other modules import them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from schemas.v1.events import Channel, Level
from tools.simulator.profiles import (
    DEFAULT_VOLUME_AND_FEE,
    DEFAULT_WEIGHT,
    DEPARTMENTS,
    MERGED,
    OLD_WEIGHTS,
    VOLUME_AND_FEE,
)


@dataclass(frozen=True, slots=True)
class Agency:
    """One version of an agency, valid on [valid_from, valid_to)."""

    code: str
    name: str
    level: Level
    parent: str | None  # the parent in the seed tree: KHANHHOA, or a district before 1/7/2025
    weight: float
    valid_from: date
    valid_to: date | None
    # The pre-2025 district whose area the unit serves (itself for a district, None for a
    # department): its profile (online share, land lateness, publishing system) applies.
    area: str | None = None
    domains: tuple[str, ...] = ()  # departments only: the domains whose TTHC they handle

    def valid_at(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@dataclass(frozen=True, slots=True)
class Domain:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Procedure:
    """One version of a TTHC, valid on [valid_from, valid_to)."""

    code: str  # as printed in the national database and carried in events, e.g. "1.004227"
    name: str
    domain: str
    levels: tuple[Level, ...]
    processing_days: int  # working days between receipt and the promised return date
    fee_vnd: int  # 0: no fee or charge
    paper_result: bool
    online: bool  # offered as an online public service
    weight: float
    valid_from: date
    valid_to: date | None

    @property
    def fee_required(self) -> bool:
        return self.fee_vnd > 0

    def valid_at(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


DOMAINS: tuple[Domain, ...] = (
    Domain("dat_dai", "Đất đai"),
    Domain("ho_tich", "Hộ tịch"),
    Domain("xay_dung", "Xây dựng"),
    Domain("dang_ky_kinh_doanh", "Đăng ký kinh doanh"),
    Domain("chung_thuc", "Chứng thực"),
    Domain("lao_dong", "Lao động, việc làm"),
    Domain("giao_thong", "Đường bộ"),
    Domain("y_te", "Y tế"),
    Domain("moi_truong", "Môi trường"),
    Domain("bao_tro_xa_hoi", "Bảo trợ xã hội"),
    Domain("giao_duc", "Giáo dục"),
    Domain("ly_lich_tu_phap", "Lý lịch tư pháp"),
    Domain("thuy_san", "Thủy sản"),
    Domain("luu_thong_hang_hoa", "Lưu thông hàng hóa trong nước"),
)

DOMAIN_LABELS: dict[str, str] = {d.code: d.name for d in DOMAINS}
LEVEL_LABELS: dict[str, str] = {
    Level.province.value: "Cấp tỉnh",
    Level.district.value: "Cấp huyện",
    Level.commune.value: "Cấp xã",
}
CHANNEL_LABELS: dict[str, str] = {
    Channel.online.value: "Trực tuyến",
    Channel.direct.value: "Trực tiếp",
    Channel.postal.value: "Bưu chính công ích",
}


def read_seed() -> dict[str, Any]:
    """The seed file `motcua up` loads, as parsed JSON."""
    entry = resources.files("core.reference") / "data" / "khanhhoa.json"
    data: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
    return data


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _agencies(records: list[dict[str, Any]]) -> tuple[Agency, ...]:
    """Every version of every unit that receives items: all but the root (no parent)."""
    district_codes = {r["agency_code"] for r in records if r["level"] == "district"}
    # old commune → its district (a kept code also has a new version, under the province)
    districts = {
        r["agency_code"]: r["parent_code"] for r in records if r["parent_code"] in district_codes
    }
    totals: dict[str, float] = {}  # the old communes' volume per district
    for commune, district in districts.items():
        totals[district] = totals.get(district, 0.0) + OLD_WEIGHTS.get(commune, 0.0)
    agencies = []
    for r in records:
        if r["parent_code"] is None:
            continue
        level = Level(r["level"])
        weight, area, domains = _profile(
            r["agency_code"], level, r["parent_code"], districts, totals
        )
        agencies.append(
            Agency(
                code=r["agency_code"],
                name=r["name"],
                level=level,
                parent=r["parent_code"],
                weight=weight,
                valid_from=date.fromisoformat(r["valid_from"]),
                valid_to=_day(r["valid_to"]),
                area=area,
                domains=domains,
            )
        )
    return tuple(agencies)


def _profile(
    code: str, level: Level, parent: str, districts: dict[str, str], totals: dict[str, float]
) -> tuple[float, str | None, tuple[str, ...]]:
    """(weight, area, domains) of one agency version."""
    if level is Level.province:
        domains, weight = DEPARTMENTS.get(code, ((), DEFAULT_WEIGHT[level]))
        return weight, None, domains
    if level is Level.district:
        return OLD_WEIGHTS.get(code, DEFAULT_WEIGHT[level]), code, ()
    absorbed = MERGED.get(code, ()) if parent == "KHANHHOA" else ()
    if not absorbed:  # a commune of the old tree, or a new unit without a profile here
        return OLD_WEIGHTS.get(code, DEFAULT_WEIGHT[level]), parent, ()
    area = districts.get(absorbed[0])
    own = sum(OLD_WEIGHTS.get(old, 0.0) for old in absorbed)
    total = totals.get(area or "", 0.0)
    share = OLD_WEIGHTS.get(area or "", 0.0) * own / total if total else 0.0
    return (own + share) or DEFAULT_WEIGHT[level], area, ()


def _procedures(records: list[dict[str, Any]]) -> tuple[Procedure, ...]:
    procedures = []
    for r in records:
        if r["processing_unit"] != "working_day":
            raise ValueError(f"{r['procedure_code']}: the simulator counts working days only")
        weight, fee = VOLUME_AND_FEE.get(r["procedure_code"], DEFAULT_VOLUME_AND_FEE)
        procedures.append(
            Procedure(
                code=r["procedure_code"],
                name=r["name"],
                domain=r["domain_code"],
                levels=tuple(Level(level) for level in r["levels"]),
                processing_days=r["processing_days"],
                fee_vnd=(fee or DEFAULT_VOLUME_AND_FEE[1]) if r["fee_bearing"] else 0,
                paper_result=r["paper_result_required"],
                online=r["online_level"] != "none",
                weight=weight,
                valid_from=date.fromisoformat(r["valid_from"]),
                valid_to=_day(r["valid_to"]),
            )
        )
    return tuple(procedures)


_SEED = read_seed()
AGENCIES: tuple[Agency, ...] = _agencies(_SEED["agencies"])  # every version
PROCEDURES: tuple[Procedure, ...] = _procedures(_SEED["procedures"])  # every version
del _SEED


def agencies_at(day: date) -> tuple[Agency, ...]:
    return tuple(a for a in AGENCIES if a.valid_at(day))


def agency_by_code(code: str, at: date | None = None) -> Agency | None:
    """The version valid at `at`; without `at`, the latest version."""
    found = [a for a in AGENCIES if a.code == code and (at is None or a.valid_at(at))]
    return max(found, key=lambda a: a.valid_from) if found else None


def procedure_by_code(code: str, at: date | None = None) -> Procedure | None:
    """Look up by national code ("1.004227"), as carried in dossier events: the version valid at
    `at`; without `at`, the latest version."""
    found = [p for p in PROCEDURES if p.code == code and (at is None or p.valid_at(at))]
    return max(found, key=lambda p: p.valid_from) if found else None


def procedures_for(agency: Agency, at: date | None = None) -> tuple[Procedure, ...]:
    """The TTHC an agency handles at `at` (default: when its version starts): those in force then
    at its level, and for a department also in its domains."""
    day = agency.valid_from if at is None else at
    return tuple(
        p
        for p in PROCEDURES
        if p.valid_at(day)
        and agency.level in p.levels
        and (agency.level is not Level.province or p.domain in agency.domains)
    )
