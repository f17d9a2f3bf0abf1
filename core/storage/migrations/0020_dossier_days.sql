-- Day counts: the current dossier facts counted per local day of what a flow figure is anchored
-- on, agency, domain, level and the few instant-independent flags the figures read
-- (core/figures/days.py has the why). A question about whole past days sums these rows
-- instead of reading one row per dossier, so its cost follows the days and agencies it asks
-- about, not the history behind them.
--
-- Anchors (`day` is the local day of):
--   finished    its end (resolved, returned or withdrawn)
--   received    its receipt
--   paid        its first payment
--   digitized   its receipt, for a digitised dossier, with how many days later it was digitised
--   online_procedure / paid_online_procedure: its receipt online / its first payment when paid
--               online, with its procedure (the 766 index counts procedures with such dossiers)
-- A column an anchor does not use holds its default, so it splits nobody's counts.
--
-- Fed from dossier_facts by a materialized view: the refolder's added and cancelled rows arrive
-- with their sign, so the sums stay equal to the facts whatever merges have happened. A rebuild
-- of the facts truncates this table too (core/figures/facts.py).
CREATE TABLE IF NOT EXISTS dossier_days (
    anchor Enum8('finished' = 1, 'received' = 2, 'paid' = 3, 'digitized' = 4,
                 'online_procedure' = 5, 'paid_online_procedure' = 6),
    day Date,
    agency_code LowCardinality(String),
    domain_code LowCardinality(Nullable(String)),
    level LowCardinality(Nullable(String)),
    -- has a due date (a figure of §2 and the 766 index count only those)
    due UInt8,
    -- withdrawn and never resolved nor returned (a rule set may leave these out)
    withdrawn_only UInt8,
    -- received: the channel
    channel LowCardinality(Nullable(String)),
    -- finished: the §2 judgment made when the facts were folded (reference §2)
    late UInt8,
    late_day UInt8,
    early_day UInt8,
    multi_supplement UInt8,
    -- finished and received
    paper_result_required Nullable(UInt8),
    e_result Nullable(UInt8),
    -- finished: the dossier's last rating was unsatisfied (766 indicator 5.4)
    unsatisfied UInt8,
    -- paid: the first payment was online; any amount was paid
    paid_online UInt8,
    paid_amount_positive UInt8,
    -- digitized: local days from receipt to digitisation
    digitized_lag Int32,
    -- online_procedure, paid_online_procedure
    procedure_code LowCardinality(String),
    n SimpleAggregateFunction(sum, Int64),
    events SimpleAggregateFunction(sum, Int64),
    minutes SimpleAggregateFunction(sum, Int64),
    watermark SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (anchor, day, agency_code, domain_code, level, due, withdrawn_only, channel, late,
          late_day, early_day, multi_supplement, paper_result_required, e_result, unsatisfied,
          paid_online, paid_amount_positive, digitized_lag, procedure_code)
SETTINGS allow_nullable_key = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_days_mv TO dossier_days AS
SELECT
    a.1 AS anchor,
    toDate(assumeNotNull(a.2), 'Asia/Ho_Chi_Minh') AS day,
    f.agency_code AS agency_code,
    f.domain_code AS domain_code,
    f.level AS level,
    f.due_at IS NOT NULL AS due,
    f.withdrawn_at IS NOT NULL AND f.resolved_at IS NULL AND f.returned_at IS NULL
        AS withdrawn_only,
    if(a.1 = 'received', f.channel, NULL) AS channel,
    a.1 = 'finished' AND f.end_late = 1 AS late,
    a.1 = 'finished' AND f.end_late_day = 1 AS late_day,
    a.1 = 'finished' AND f.end_early_day = 1 AS early_day,
    a.1 = 'finished' AND f.end_requests > 1 AS multi_supplement,
    if(a.1 IN ('finished', 'received'), f.paper_result_required, NULL) AS paper_result_required,
    if(a.1 IN ('finished', 'received'), f.e_result, NULL) AS e_result,
    a.1 = 'finished' AND f.last_rating.2 = 'unsatisfied' AS unsatisfied,
    a.1 = 'paid' AND f.paid_online = 1 AS paid_online,
    a.1 = 'paid' AND f.paid_amount > 0 AS paid_amount_positive,
    if(a.1 = 'digitized',
       dateDiff('day', toDate(assumeNotNull(f.received_at), 'Asia/Ho_Chi_Minh'),
                toDate(assumeNotNull(f.digitized_at), 'Asia/Ho_Chi_Minh')),
       0) AS digitized_lag,
    if(a.1 IN ('online_procedure', 'paid_online_procedure'), assumeNotNull(f.procedure_code), '')
        AS procedure_code,
    sum(toInt64(f.sign)) AS n,
    sum(toInt64(f.sign) * toInt64(f.event_count)) AS events,
    sum(if(a.1 = 'finished',
           toInt64(f.sign)
               * ifNull(greatest(0, dateDiff('minute', f.received_at, f.end_effective_at)), 0),
           0)) AS minutes,
    max(f.valid_from) AS watermark
FROM dossier_facts AS f
ARRAY JOIN [
    ('finished', f.end_at),
    ('received', f.received_at),
    ('paid', f.paid_at),
    ('digitized', if(f.digitized_at IS NULL, NULL, f.received_at)),
    ('online_procedure',
     if(f.channel = 'online' AND f.procedure_code IS NOT NULL, f.received_at, NULL)),
    ('paid_online_procedure',
     if(f.paid_online = 1 AND f.procedure_code IS NOT NULL, f.paid_at, NULL))
] AS a
WHERE f.valid_to = toDateTime64('2299-12-31 00:00:00', 3, 'UTC') AND a.2 IS NOT NULL
-- summed within each write: a refolder step's cancelled and added versions of a dossier mostly
-- cancel out here instead of being written and merged away
GROUP BY ALL
HAVING n != 0 OR events != 0 OR minutes != 0;

-- What the day counts know of a digitisation is its day: the 766 index reads a live figure's
-- dossiers digitised on its day from the facts, found by this index.
ALTER TABLE dossier_facts ADD INDEX IF NOT EXISTS idx_digitized_at digitized_at TYPE minmax GRANULARITY 1;

ALTER TABLE dossier_facts MATERIALIZE INDEX idx_digitized_at;
