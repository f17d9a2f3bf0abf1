"""Every board, in the order they are listed and exported."""

from __future__ import annotations

from services.grafana.board_766 import index766
from services.grafana.board_pipeline import pipeline
from services.grafana.boards_plan import agency_drilldown, land, overview
from services.grafana.boards_topics import apology, digitisation, feedback, online
from services.grafana.model import Dashboard


def all_dashboards() -> tuple[Dashboard, ...]:
    return (
        overview(),
        agency_drilldown(),
        land(),
        online(),
        digitisation(),
        feedback(),
        apology(),
        index766(),
        pipeline(),
    )
