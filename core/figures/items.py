"""What the drill-down lists of a figure's items: their columns, keys and timeliness."""

from __future__ import annotations

# A drill-down item's timeliness (services/api/drilldown.py): a dossier finished by the judging
# instant as §2 judged it at its end (early, on_time, late); one still open there within its
# deadline or overdue at that instant, as Biểu II.06a counts open dossiers (report_ii06a.py,
# at_t_dossiers): it has not finished, so it is neither early nor late yet. The figures keep
# `timeliness` itself, whose 'late' for an open dossier is this 'overdue' (OPEN_LATE).
ITEM_TIMELINESS = (
    "multiIf(timeliness IS NULL, NULL, finished_by_t, timeliness, "
    "timeliness = 'late', 'overdue', 'within')"
)
# Named apart in the SQL: an alias `timeliness` would replace the column in the figure's WHERE.
ITEM_RENAMED = {"item_timeliness": "timeliness"}
ITEM_KEYS = {"dossier": "dossier_id", "feedback": "feedback_id"}

ITEM_COLUMNS = {
    "dossier": (
        "agency_code, dossier_id, domain_code, level, channel, received_at, due_at, end_at, "
        f"effective_at, requests AS supplements, {ITEM_TIMELINESS} AS item_timeliness, "
        "event_count"
    ),
    "feedback": (
        "agency_code, feedback_id, topic, filed_at, due_at, answered_at, published_at, event_count"
    ),
}
