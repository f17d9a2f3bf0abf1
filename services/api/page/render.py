"""Jinja2 templates shipped in the package (services/api/page/templates)."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@cache
def environment() -> Environment:
    # StrictUndefined: a misspelt field fails the test suite instead of printing an empty cell.
    # Autoescape for .html only, so style.css is inlined as written.
    return Environment(
        loader=PackageLoader("services.api.page", "templates"),
        autoescape=select_autoescape(("html",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
