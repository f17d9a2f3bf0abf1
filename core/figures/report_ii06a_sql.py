"""The SQL of Biểu II.06a (core/figures/report_ii06a.py): the flows from the day counts and
from the facts since the cut, and the dossiers open at the judging instant."""

from __future__ import annotations

# The report counts every dossier with a due date received by the judging instant `t` and not
# finished before the period. At `t` each is finished in the period (columns 8-10) or still open
# (12-13), and was received in the period (4-5) or before it (6). The flows (4-5, 8-10) come from
# the day counts like any flow figure (core/figures/days.py), with the facts for today's
# days and what the refolder has not caught up with. The dossiers open at `t` are read from the
# facts and judged there. Column 6 then follows from 3 = 7 + 11, so the dossiers open at the
# period's start are never read one by one.
#
# An integrator may date a dossier's end before its receipt (the event contract allows it). The
# report leaves out such a dossier when its receipt is in the period but its end before it, or
# its end in the period but its receipt after `t`; a flow would count both. The first kind is
# told apart in the day counts (`end_lead`), the second read with the open dossiers.
# Both flows' whole past days in one scan of the day counts (core/figures/days.py): every
# day read lies in the period and before `t`.
DAYS = """
SELECT agency_code,
    sumIf(n, received AND channel = 'online') AS received_online,
    sumIf(n, received AND channel != 'online') AS received_direct_postal,
    sumIf(n, received) AS received_n,
    sumIf(n, finished AND NOT late_ AND early_day = 1) AS resolved_early,
    sumIf(n, finished AND NOT late_ AND early_day = 0) AS resolved_on_time,
    sumIf(n, finished AND late_) AS resolved_late,
    0 AS pending_within, 0 AS pending_overdue,
    sumIf(n, finished) AS settled, sumIf(events, finished) AS events,
    maxIf(watermark, finished AND n > 0) AS watermark
FROM (
    SELECT agency_code, channel, early_day, n, events, watermark,
        anchor = 'received' AS received, anchor = 'finished' AS finished, {days.LATE} AS late_
    FROM {days_table}
    WHERE anchor IN ('received', 'finished') AND due = 1 AND {window}
        -- ended before the period: end_lead is the local days from its end to its receipt,
        -- and the period starts at a local midnight
        AND NOT (end_lead > 0 AND subtractDays(day, end_lead) < {first_day:Date})
)
GROUP BY agency_code
"""

# The facts rows of the flows: every row of theirs without the day counts, or beside them the
# rows since the cut and the delta's corrections, which each flow picks by its side
# ({received_side}, {finished_side}: dossier_sql.flow_side; "1" without the counts).
FLOWS = """
SELECT agency_code,
    sumIf(sign, rec AND channel = 'online') AS received_online,
    sumIf(sign, rec AND channel != 'online') AS received_direct_postal,
    sumIf(sign, rec) AS received_n,
    sumIf(sign, fin AND timeliness = 'early') AS resolved_early,
    sumIf(sign, fin AND timeliness = 'on_time') AS resolved_on_time,
    sumIf(sign, fin AND timeliness = 'late') AS resolved_late,
    0 AS pending_within, 0 AS pending_overdue,
    sumIf(sign, fin) AS settled, sumIf(sign * event_count, fin) AS events,
    maxIf(last_ingested_at, sign > 0 AND fin) AS watermark
FROM (
    SELECT *,
        due_at IS NOT NULL AND received_at >= period_start AND received_at < t
            AND NOT ifNull(end_at < period_start, 0) AND {received_side} AS rec,
        due_at IS NOT NULL AND end_at >= period_start AND end_at < t
            AND {finished_side} AS fin
    FROM ({rows})
)
GROUP BY agency_code
"""

# The dossiers open at `t` (columns 12-13), and those finished in the period but received after
# `t`, which the flows counted and the report leaves out (dossier_sql.at_t_dossiers).
AT_T = """
SELECT agency_code, 0 AS received_online, 0 AS received_direct_postal, 0 AS received_n,
    -sumIf(sign, NOT open AND end_timeliness = 'early') AS resolved_early,
    -sumIf(sign, NOT open AND end_timeliness = 'on_time') AS resolved_on_time,
    -sumIf(sign, NOT open AND end_timeliness = 'late') AS resolved_late,
    sumIf(sign, open AND NOT overdue) AS pending_within,
    sumIf(sign, overdue) AS pending_overdue,
    sumIf(sign, open) - sumIf(sign, NOT open) AS settled,
    sumIf(sign * event_count, open) - sumIf(sign * event_count, NOT open) AS events,
    maxIf(last_ingested_at, sign > 0 AND open) AS watermark
FROM ({rows})
-- judged before the period began (as of an instant before it), a dossier that ended before it
-- is not the period's
WHERE NOT open OR end_at IS NULL OR end_at >= {period_start:DateTime64(3, 'UTC')}
GROUP BY agency_code
"""
