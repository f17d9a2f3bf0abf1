-- Day counts: the current dossier facts counted per local day of what a flow figure is anchored
-- on (finished, received, paid), agency, domain, level and the few instant-independent flags the
-- figures read (services/metrics/days.py has the why). A question about whole past days sums
-- these rows instead of reading one row per dossier, so its cost follows the days and agencies
-- it asks about, not the history behind them.
--
-- Fed from dossier_facts by a materialized view: the refolder's added and cancelled rows arrive
-- with their sign, so the sums stay equal to the facts whatever merges have happened. A rebuild
-- of the facts truncates this table too (services/metrics/facts.py).
CREATE TABLE IF NOT EXISTS dossier_days (
    anchor Enum8('finished' = 1, 'received' = 2, 'paid' = 3),
    day Date,
    agency_code LowCardinality(String),
    domain_code LowCardinality(Nullable(String)),
    level LowCardinality(Nullable(String)),
    channel LowCardinality(Nullable(String)),
    -- finished: the §2 judgment made when the facts were folded (reference §2)
    due UInt8,
    late UInt8,
    late_day UInt8,
    early_day UInt8,
    multi_supplement UInt8,
    paper_result_required Nullable(UInt8),
    e_result Nullable(UInt8),
    -- paid: the first payment was online
    paid_online UInt8,
    -- withdrawn and never resolved nor returned (a rule set may leave these out)
    withdrawn_only UInt8,
    n SimpleAggregateFunction(sum, Int64),
    events SimpleAggregateFunction(sum, Int64),
    minutes SimpleAggregateFunction(sum, Int64),
    watermark SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (anchor, day, agency_code, domain_code, level, channel, due, late, late_day, early_day,
          multi_supplement, paper_result_required, e_result, paid_online, withdrawn_only)
SETTINGS allow_nullable_key = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_days_mv TO dossier_days AS
SELECT
    a.1 AS anchor,
    toDate(assumeNotNull(a.2), 'Asia/Ho_Chi_Minh') AS day,
    f.agency_code AS agency_code,
    f.domain_code AS domain_code,
    f.level AS level,
    if(a.1 = 'received', f.channel, NULL) AS channel,
    a.1 = 'finished' AND f.due_at IS NOT NULL AS due,
    a.1 = 'finished' AND f.end_late = 1 AS late,
    a.1 = 'finished' AND f.end_late_day = 1 AS late_day,
    a.1 = 'finished' AND f.end_early_day = 1 AS early_day,
    a.1 = 'finished' AND f.end_requests > 1 AS multi_supplement,
    if(a.1 = 'finished', f.paper_result_required, NULL) AS paper_result_required,
    if(a.1 = 'finished', f.e_result, NULL) AS e_result,
    a.1 = 'paid' AND f.paid_online = 1 AS paid_online,
    f.withdrawn_at IS NOT NULL AND f.resolved_at IS NULL AND f.returned_at IS NULL AS withdrawn_only,
    toInt64(f.sign) AS n,
    toInt64(f.sign) * toInt64(f.event_count) AS events,
    if(a.1 = 'finished',
       toInt64(f.sign)
           * ifNull(greatest(0, dateDiff('minute', f.received_at, f.end_effective_at)), 0),
       0) AS minutes,
    f.valid_from AS watermark
FROM dossier_facts AS f
ARRAY JOIN [('finished', f.end_at), ('received', f.received_at), ('paid', f.paid_at)] AS a
WHERE f.valid_to = toDateTime64('2299-12-31 00:00:00', 3, 'UTC') AND a.2 IS NOT NULL;
