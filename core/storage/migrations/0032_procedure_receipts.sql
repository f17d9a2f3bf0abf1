-- Day counts learn every receipt's procedure (anchor `received_procedure`: a dossier with a
-- procedure code, on the local day of its receipt, with its channel), so a figure whose population
-- is a set of procedures is answered from the counts too: `full_online_share` (the procedures the
-- catalogue marks eligible for the whole online process, valid at the period's end) read every
-- dossier received in the period, one facts row each (a province's year by agency: 220 ms at 1M
-- dossiers, growing with the period's volume). The receipts per procedure are counted apart from
-- the `received` rows, whose readers (every other receipt figure) keep reading as few rows as
-- before; `online_procedure` (the 766 index's online receipts per procedure) stays as it is.
--
-- The view is recreated with the new anchor and the counts refilled from the facts by its own
-- query (core/storage/migrate.py FILLS), before any writer starts; the month counts follow the
-- day counts' inserts through their own view (0026), so they are emptied first and refilled by
-- that fill.
DROP VIEW IF EXISTS dossier_days_mv;

TRUNCATE TABLE IF EXISTS dossier_days;

TRUNCATE TABLE IF EXISTS dossier_months;

ALTER TABLE dossier_days MODIFY COLUMN anchor Enum8(
    'finished' = 1, 'received' = 2, 'paid' = 3, 'digitized' = 4, 'online_procedure' = 5,
    'paid_online_procedure' = 6, 'received_procedure' = 7);

ALTER TABLE dossier_months MODIFY COLUMN anchor Enum8(
    'finished' = 1, 'received' = 2, 'paid' = 3, 'digitized' = 4, 'online_procedure' = 5,
    'paid_online_procedure' = 6, 'received_procedure' = 7);

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
    if(a.1 IN ('received', 'received_procedure'), f.channel, NULL) AS channel,
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
    if(a.1 IN ('online_procedure', 'paid_online_procedure', 'received_procedure'),
       assumeNotNull(f.procedure_code), '') AS procedure_code,
    if(a.1 = 'received' AND f.end_at IS NOT NULL,
       greatest(0, dateDiff('day', toDate(assumeNotNull(f.end_at), 'Asia/Ho_Chi_Minh'),
                            toDate(assumeNotNull(f.received_at), 'Asia/Ho_Chi_Minh'))),
       0) AS end_lead,
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
     if(f.paid_online = 1 AND f.procedure_code IS NOT NULL, f.paid_at, NULL)),
    ('received_procedure', if(f.procedure_code IS NOT NULL, f.received_at, NULL))
] AS a
WHERE f.valid_to = toDateTime64('2299-12-31 00:00:00', 3, 'UTC') AND a.2 IS NOT NULL
-- summed within each write: a refolder step's cancelled and added versions of a dossier mostly
-- cancel out here instead of being written and merged away
GROUP BY ALL
HAVING n != 0 OR events != 0 OR minutes != 0;
