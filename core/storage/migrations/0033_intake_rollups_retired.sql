-- The daily intake rollups (0005) are retired. They kept an exact set of dossier (feedback) ids
-- per day and group, so they grew with the whole history (413 MiB at 10M dossiers, against
-- 72 MiB for the day counts that answer the figures), and their two views ran on every insert
-- into `events`, whatever it held: ~20 ms of a 1,000-event flush's ~110 ms insert, planned
-- again for each block. Nothing reads them but one board panel and a board variable, which now
-- read the day counts (`dossier_days`, anchor `received`: one row per day and group, summed by
-- sign) and the procedure catalogue.
DROP VIEW IF EXISTS dossier_intake_daily_mv;

DROP VIEW IF EXISTS feedback_intake_daily_mv;

DROP TABLE IF EXISTS dossier_intake_daily;

DROP TABLE IF EXISTS feedback_intake_daily;
