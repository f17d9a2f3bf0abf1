"""The province's time zone, defined once: every local day, period, deadline and working day is
counted in it (the reference's rules, the manifests' days, the boards' ranges)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

TZ = "Asia/Ho_Chi_Minh"
"""Its name, as SQL (`toDate(at, 'Asia/Ho_Chi_Minh')`) and Grafana take it."""
VN = ZoneInfo(TZ)
TZ_SQL = f"'{TZ}'"
"""The name as a SQL string literal."""
