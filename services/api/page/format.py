"""Vietnamese number and date formats (decimal comma, dot for thousands, dd/mm/yyyy).

One place for them, so the page and its tests agree on how a figure is written.
"""

from __future__ import annotations

from datetime import date, datetime

from core.zone import VN

DASH = "—"  # a figure with nothing to divide by: never shown as 0%

_COMPARATORS = {"<": "<", "<=": "≤", ">=": "≥", ">": ">", "==": "="}


def number(value: int) -> str:
    """12345 → "12.345"."""
    return f"{value:,}".replace(",", ".")


def decimal(value: float, digits: int) -> str:
    """Rounded to `digits` places, trailing zeros dropped: 60.10 → "60,1", 19.0 → "19"."""
    text = f"{value:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def percent(rate: float | None) -> str:
    """5/9 → "55,56%": a percentage with two decimals, as every rate of the service is written
    (reference §4; the 766 index, the boards and the open data alike)."""
    if rate is None:
        return DASH
    return f"{rate * 100:.2f}".replace(".", ",") + "%"


def points(value: float | None) -> str:
    """766 points with two decimals always, as the index computes them: "58,80" beside
    "59,24", never "58,8" (issue 15)."""
    if value is None:
        return DASH
    return f"{float(value):,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def day(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def moment(value: datetime) -> str:
    """An instant in Khánh Hòa's local time, e.g. "19:53 28/11/2026"."""
    return value.astimezone(VN).strftime("%H:%M %d/%m/%Y")


def month_label(first_day: date) -> str:
    return f"T{first_day.month}/{first_day.year}"


def requirement(comparator: str, threshold: float, *, minutes: bool = False) -> str:
    """A plan threshold as the plan writes it: ("<", 0.02) → "< 2%"."""
    shown = decimal(threshold, 0) + " phút" if minutes else decimal(threshold * 100, 2) + "%"
    return f"{_COMPARATORS.get(comparator, comparator)} {shown}"
