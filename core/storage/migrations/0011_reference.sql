-- Reference data (schemas/v1/reference.py): versions of agencies (the org tree) and procedures (the
-- TTHC catalogue), each valid over [valid_from, valid_to). One row per ingested record, with its
-- provenance; the same (code, valid_from) published again replaces the earlier row (the latest
-- ingested wins), on merge here and at once in the *_current views below.
CREATE TABLE IF NOT EXISTS agencies (
    agency_code String,
    valid_from Date32,
    valid_to Nullable(Date32),                  -- exclusive; NULL: still valid
    name String,
    level LowCardinality(String),               -- province | district | commune
    parent_code Nullable(String),               -- NULL only for the root (the province)
    event_id UUID,
    occurred_at DateTime64(3, 'UTC'),
    source LowCardinality(String),
    payload String CODEC(ZSTD(3)),              -- the validated record as canonical JSON
    subject String,
    stream_seq UInt64,                          -- 0 when loaded directly (motcua catalog load --direct)
    published_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (agency_code, valid_from);

CREATE TABLE IF NOT EXISTS procedures (
    procedure_code String,
    valid_from Date32,
    valid_to Nullable(Date32),
    name String,
    domain_code LowCardinality(String),
    processing_days UInt16,
    processing_unit LowCardinality(String),     -- working_day | calendar_day
    fee_bearing UInt8,
    paper_result_required UInt8,
    online_level LowCardinality(String),        -- full (toàn trình) | partial (một phần) | none
    full_online_eligible UInt8,
    online_payment_integrated UInt8,
    levels Array(LowCardinality(String)),
    decision_date Date32,                       -- ngày quyết định công bố
    legal_basis_effective_date Date32,
    public_in_national_db_at Nullable(Date32),  -- NULL: not yet public in the national database
    parts_complete UInt8,                       -- all 7 required parts published
    event_id UUID,
    occurred_at DateTime64(3, 'UTC'),
    source LowCardinality(String),
    payload String CODEC(ZSTD(3)),
    subject String,
    stream_seq UInt64,
    published_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (procedure_code, valid_from);

-- The latest ingested version per (code, valid_from), whether or not the parts have merged yet.
-- argMax over a tuple, so a NULL valid_to in the newer row is kept (argMax skips NULL arguments);
-- ties on ingested_at go to the later stream sequence.
CREATE VIEW IF NOT EXISTS agencies_current AS
SELECT
    agency_code,
    valid_from,
    latest.1 AS valid_to,
    latest.2 AS name,
    latest.3 AS level,
    latest.4 AS parent_code,
    latest.5 AS event_id,
    latest.6 AS source,
    latest.7 AS subject,
    latest.8 AS stream_seq,
    latest.9 AS ingested_at
FROM
(
    SELECT
        agency_code,
        valid_from,
        argMax(
            (valid_to, name, level, parent_code, event_id, source, subject, stream_seq, ingested_at),
            (ingested_at, stream_seq)
        ) AS latest
    FROM agencies
    GROUP BY agency_code, valid_from
);

CREATE VIEW IF NOT EXISTS procedures_current AS
SELECT
    procedure_code,
    valid_from,
    latest.1 AS valid_to,
    latest.2 AS name,
    latest.3 AS domain_code,
    latest.4 AS processing_days,
    latest.5 AS processing_unit,
    latest.6 AS fee_bearing,
    latest.7 AS paper_result_required,
    latest.8 AS online_level,
    latest.9 AS full_online_eligible,
    latest.10 AS online_payment_integrated,
    latest.11 AS levels,
    latest.12 AS decision_date,
    latest.13 AS legal_basis_effective_date,
    latest.14 AS public_in_national_db_at,
    latest.15 AS parts_complete,
    latest.16 AS event_id,
    latest.17 AS source,
    latest.18 AS subject,
    latest.19 AS stream_seq,
    latest.20 AS ingested_at
FROM
(
    SELECT
        procedure_code,
        valid_from,
        argMax(
            (
                valid_to, name, domain_code, processing_days, processing_unit, fee_bearing,
                paper_result_required, online_level, full_online_eligible,
                online_payment_integrated, levels, decision_date, legal_basis_effective_date,
                public_in_national_db_at, parts_complete, event_id, source, subject, stream_seq,
                ingested_at
            ),
            (ingested_at, stream_seq)
        ) AS latest
    FROM procedures
    GROUP BY procedure_code, valid_from
);
