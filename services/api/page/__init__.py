"""The public scorecard page (served at `/`): the plan's targets with their status, every
agency's figures and the year's trends, as server-rendered HTML in Vietnamese.

Every figure comes from the same functions the JSON routes answer with (services/api/routes), so
the page and the API cannot disagree; this package only arranges and formats them. The province
page's figures are also served as open data (JSON, CSV) from the same Scorecard (scorecard.py,
open_tables.py, open_targets.py; routes in services/api/routes/open_data.py).
"""

from services.api.page.routes import router

__all__ = ["router"]
