-- Plan alerts (core/plans/alerts.py): one row per transition of an alert — fired, changed,
-- resolved — with the evidence that triggered it. alert_id names the condition (plan, target,
-- agency, period, kind) so that a condition already firing is not fired again; seq orders its
-- transitions, and a retried insert of the same (alert_id, seq) collapses.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id String,
    seq UInt32,
    state LowCardinality(String),               -- firing | resolved
    at DateTime64(3, 'UTC'),
    kind LowCardinality(String),                -- status | burn_fast | burn_slow
    severity LowCardinality(String),            -- critical | warning | info
    plan LowCardinality(String),
    target_id LowCardinality(String),
    agency_code LowCardinality(String),
    period_start Date32,
    status LowCardinality(String),
    previous_status LowCardinality(String),
    summary String,                             -- Vietnamese, for people
    evidence String                             -- JSON: the figures behind the transition
)
ENGINE = ReplacingMergeTree
ORDER BY (alert_id, seq);

-- The latest transition of every alert: what is firing now, and since when it last changed.
CREATE VIEW IF NOT EXISTS alerts_current AS
SELECT
    alert_id,
    max(seq) AS last_seq,
    argMax(state, seq) AS state,
    argMax(at, seq) AS changed_at,
    min(at) AS first_at,
    argMax(kind, seq) AS kind,
    argMax(severity, seq) AS severity,
    argMax(plan, seq) AS plan,
    argMax(target_id, seq) AS target_id,
    argMax(agency_code, seq) AS agency_code,
    argMax(period_start, seq) AS period_start,
    argMax(status, seq) AS status,
    argMax(summary, seq) AS summary,
    argMax(evidence, seq) AS evidence
FROM alerts
GROUP BY alert_id;
