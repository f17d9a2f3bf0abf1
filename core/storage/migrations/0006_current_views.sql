-- One row per dossier / feedback item: the folded state merged across parts. Supplement arrays are
-- sorted by time so the k-th request pairs with the k-th resubmission (reference §2).
CREATE VIEW IF NOT EXISTS dossiers AS
SELECT
    agency_code,
    dossier_id,
    max(procedure_code) AS procedure_code,
    max(domain_code) AS domain_code,
    max(level) AS level,
    max(channel) AS channel,
    min(received_at) AS received_at,
    min(due_at) AS due_at,
    max(fee_required) AS fee_required,
    max(paper_result_required) AS paper_result_required,
    arraySort(groupUniqArrayArray(supplement_requests)) AS supplement_requests,
    arraySort(groupUniqArrayArray(supplement_receipts)) AS supplement_receipts,
    min(resolved_at) AS resolved_at,
    max(outcome) AS outcome,
    max(e_result) AS e_result,
    min(returned_at) AS returned_at,
    min(withdrawn_at) AS withdrawn_at,
    min(late_notice_at) AS late_notice_at,
    arraySort(groupUniqArrayArray(apologies)) AS apologies,
    arraySort(groupUniqArrayArray(payments)) AS payments,
    min(digitized_at) AS digitized_at,
    max(last_rating) AS last_rating,
    uniqExactMerge(event_count) AS event_count,
    max(last_event_at) AS last_event_at,
    max(last_ingested_at) AS last_ingested_at
FROM dossier_state
GROUP BY agency_code, dossier_id;

CREATE VIEW IF NOT EXISTS feedback AS
SELECT
    agency_code,
    feedback_id,
    min(filed_at) AS filed_at,
    max(topic) AS topic,
    min(due_at) AS due_at,
    min(answered_at) AS answered_at,
    min(published_at) AS published_at,
    max(last_rating) AS last_rating,
    uniqExactMerge(event_count) AS event_count,
    max(last_event_at) AS last_event_at,
    max(last_ingested_at) AS last_ingested_at
FROM feedback_state
GROUP BY agency_code, feedback_id;
