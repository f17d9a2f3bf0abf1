"""Every board, in the order they are listed and exported."""

from __future__ import annotations

from tools.grafana.board_766 import index766
from tools.grafana.board_pipeline import pipeline
from tools.grafana.boards_plan import agency_drilldown, land, overview
from tools.grafana.boards_topics import apology, digitisation, feedback, online
from tools.grafana.model import Dashboard


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
