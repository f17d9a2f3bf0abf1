"""The 1/7/2025 restructuring, as the simulator sees it: districts are abolished and communes are
merged into larger units directly under the province (the seed tree in
services/reference/data/khanhhoa.json). An item arriving on or after that day at an abolished
unit is handled by one of its area's successors, so simulated 2026 figures roll up in the 2026
tree."""

from __future__ import annotations

from datetime import date, datetime

from schemas.v1.events import Event, Level
from services.simulator.catalog import Agency

RESTRUCTURED = date(2025, 7, 1)

# Old district → the merged units of its area after 1/7/2025 (codes of the seed tree).
SUCCESSORS: dict[str, tuple[str, ...]] = {
    "NHATRANG": ("PHUONG_BACNHATRANG", "PHUONG_NHATRANG", "PHUONG_NAMNHATRANG"),
    "CAMRANH": ("PHUONG_CAMRANH", "PHUONG_BANGOI", "XA_NAMCAMRANH"),
    "NINHHOA": ("PHUONG_NINHHOA", "PHUONG_DONGNINHHOA", "XA_TAYNINHHOA"),
    "DIENKHANH": ("XA_DIENKHANH", "XA_SUOIHIEP"),
    "CAMLAM": ("XA_CAMLAM", "XA_SUOIDAU"),
    "VANNINH": ("XA_VANNINH", "XA_VANTHANG", "XA_DAILANH"),
    "KHANHVINH": ("XA_KHANHVINH",),
    "KHANHSON": ("XA_KHANHSON", "XA_TAYKHANHSON"),
    "TRUONGSA": ("DACKHU_TRUONGSA",),
}
# Old commune codes the seed keeps as merged units after 1/7/2025.
KEPT = frozenset(code for codes in SUCCESSORS.values() for code in codes)


def successor(agency: Agency, at: datetime, seed: int) -> str | None:
    """The unit that handles an item of `agency` arriving at `at`; None when unchanged."""
    if at.date() < RESTRUCTURED or agency.level is Level.province or agency.code in KEPT:
        return None
    district = agency.code if agency.level is Level.district else agency.parent
    options = SUCCESSORS.get(district or "")
    return options[seed % len(options)] if options else None


def relocate(events: list[Event], code: str) -> list[Event]:
    """The same lifecycle, filed by the successor unit (a commune-level unit)."""
    moved: list[Event] = []
    for event in events:
        update: dict[str, object] = {"agency_code": code}
        if getattr(event, "level", None) is not None:
            update["level"] = Level.commune
        moved.append(event.model_copy(update=update))
    return moved
