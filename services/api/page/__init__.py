"""The public scorecard page (served at `/`): the plan's targets with their status, every
agency's figures and the year's trends, as server-rendered HTML in Vietnamese.

Every figure comes from the same functions the JSON routes answer with (services/api/answers), so
the page and the API cannot disagree; this package only arranges and formats them. The province
page's figures are also served as open data (JSON, CSV) from the same Scorecard (scorecard.py,
open_tables.py, open_targets.py; their routes in open_data.py). The app mounts page/routes.py's
and page/open_data.py's routers; this package re-exports nothing.
"""
