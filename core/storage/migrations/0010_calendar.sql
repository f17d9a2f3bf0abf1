-- The working-day calendar, one row for every day of every loaded year, so SQL can count working
-- days with a range query (core.reference.calendar_store.working_days_between_sql).
-- Written only by sync_calendar from the year files in core/reference/data/calendar; a day is
-- replaced by a later insert of the same day, so read with FINAL. calendar_version names the year
-- file the row came from (e.g. 'vn:2025.1').
CREATE TABLE IF NOT EXISTS calendar_days (
    day Date,
    is_working UInt8,
    kind LowCardinality(String),                -- 'workday' | 'weekend' | 'holiday' | 'makeup_workday'
    name String,                                -- Vietnamese name of a holiday or make-up day, else ''
    calendar_version LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY day;
