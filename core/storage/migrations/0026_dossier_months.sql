-- Month counts: the day counts (0020) summed per calendar month, so that a question about a year
-- reads twelve months of rows instead of 365 days of them (a tenth of the rows at a province's
-- volume; the day carries most of the key's variety). A question reads the months that lie whole
-- inside its days and the day counts for the rest (core/figures/days.py).
--
-- A row's `day` is its month's first day, and each column keeps the meaning a reader gives the
-- day counts' column, for any question whose days include the whole month:
-- - digitized_lag: days from `day` to the digitisation, or 0 when it fell inside the month (any
--   question that reads the month is judged after the month has ended);
-- - end_lead: days from the dossier's end to `day` when it ended before the month began, else 0
--   (a question that reads the month begins at or before the month's first day).
--
-- The view reads the day counts' own inserts, so the months follow every write to the days (the
-- refolder's steps, a reconciliation, a replay) and hold their sums by construction. The
-- months are filled from the day counts already stored (core/storage/migrate.py FILLS).
CREATE TABLE IF NOT EXISTS dossier_months AS dossier_days;

-- (The day counts' columns are renamed in a subquery first: the month's own `day`,
-- `digitized_lag` and `end_lead` are computed from them under the same names.)
CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_months_mv TO dossier_months AS
SELECT
    anchor,
    toStartOfMonth(d) AS day,
    agency_code,
    domain_code,
    level,
    due,
    withdrawn_only,
    channel,
    late,
    late_day,
    early_day,
    multi_supplement,
    paper_result_required,
    e_result,
    unsatisfied,
    paid_online,
    paid_amount_positive,
    if(addDays(d, lag) <= toLastDayOfMonth(d), 0,
       dateDiff('day', toStartOfMonth(d), addDays(d, lag))) AS digitized_lag,
    procedure_code,
    if(lead > 0 AND subtractDays(d, lead) < toStartOfMonth(d),
       dateDiff('day', subtractDays(d, lead), toStartOfMonth(d)), 0) AS end_lead,
    sum(n) AS n,
    sum(events) AS events,
    sum(minutes) AS minutes,
    max(watermark) AS watermark
FROM (
    SELECT * EXCEPT (day, digitized_lag, end_lead), day AS d, digitized_lag AS lag,
        end_lead AS lead
    FROM dossier_days
)
GROUP BY ALL
HAVING n != 0 OR events != 0 OR minutes != 0;
