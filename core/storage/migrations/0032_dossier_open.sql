-- Open counts: the dossiers open now whose judgment at any later instant needs no row of theirs
-- (no supplement request, a due date, a receipt), counted per local day of receipt, local day
-- of the due date, agency, domain, level and last rating. Biểu II.06a (columns 12-13) and the
-- 766 index judge every dossier open at an instant `t`; such a dossier received before `t`'s
-- day is overdue at `t` exactly when its due day lies before `t`'s day (its clock is `t`;
-- reference §2, by the instant or by the day alike when `t` is a local midnight). A province's
-- open dossiers pile up over the years (some are never finished), so judging them one row at a
-- time made these figures grow with the history; the counts are a row per day pair and group.
-- core/figures/open_counts.py has the read: the rows these counts cannot judge (a due day on
-- `t`'s own day when `t` is not a midnight, receipts on `t`'s day) and every dossier with a
-- supplement request or finished since are still read from the facts, one by one.
--
-- Fed from dossier_facts by a materialized view, like the day counts (0020): a dossier's
-- versions arrive with their sign, so when it finishes its row here is cancelled. Summing (not
-- aggregating) so that a merge deletes the rows whose n and events have come to 0: the table
-- stays the size of what is open, not of every dossier that was ever open. A rebuild of the
-- facts truncates it too, and the reconciliation refills it by year (core/figures/facts.py).
CREATE TABLE IF NOT EXISTS dossier_open (
    -- local day of receipt
    day Date,
    -- local day of the due date
    due_day Date,
    agency_code LowCardinality(String),
    domain_code LowCardinality(Nullable(String)),
    level LowCardinality(Nullable(String)),
    -- its last rating was unsatisfied (766 indicator 5.4)
    unsatisfied UInt8,
    n Int64,
    events Int64,
    watermark SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = SummingMergeTree((n, events))
PARTITION BY toYear(day)
ORDER BY (agency_code, day, due_day, domain_code, level, unsatisfied)
SETTINGS allow_nullable_key = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_open_mv TO dossier_open AS
SELECT
    toDate(assumeNotNull(f.received_at), 'Asia/Ho_Chi_Minh') AS day,
    toDate(assumeNotNull(f.due_at), 'Asia/Ho_Chi_Minh') AS due_day,
    f.agency_code AS agency_code,
    f.domain_code AS domain_code,
    f.level AS level,
    f.last_rating.2 = 'unsatisfied' AS unsatisfied,
    sum(toInt64(f.sign)) AS n,
    sum(toInt64(f.sign) * toInt64(f.event_count)) AS events,
    max(f.valid_from) AS watermark
FROM dossier_facts AS f
WHERE f.valid_to = toDateTime64('2299-12-31 00:00:00', 3, 'UTC')
    AND f.end_at IS NULL AND f.due_at IS NOT NULL AND f.received_at IS NOT NULL
    AND empty(f.supplement_requests)
GROUP BY ALL
HAVING n != 0 OR events != 0;
