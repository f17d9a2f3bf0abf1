#!/bin/bash
# One ClickHouse user per process, each with the grants it uses (issue 14, finding 2), created by
# the clickhouse-server image's entrypoint on the first start of an empty data volume:
# - motcua_admin (CLICKHOUSE_USER, the image's own): `motcua migrate` and `motcua replay` only;
#   the one with DDL and access management.
# - motcua_ingest: reads and inserts (events, dead letters, reference data; the views feed the
#   rest as their definer); no DDL, no ALTER, no access management, no API keys.
# - motcua_metrics: reads and inserts, and drops a year's partition of a day-count table when it
#   reconciles the counts with the facts; no API keys.
# - api_ro: reads everything, the hashed API keys (to check them) and the refused bytes (for
#   auditors) included.
# - grafana_ro: reads the figures' tables, never the key hashes or the refused bytes; fewer rows,
#   less time and memory, and fewer queries at once than the API.
#
# A .sh and not a .sql because the passwords come from the environment (CH_GRAFANA_PASSWORD,
# CH_API_PASSWORD) and a .sql init file is fed to clickhouse-client verbatim. The entrypoint
# executes this file when it is executable and sources it otherwise, so everything runs in a
# subshell: no `set` option or `exit` leaks into the entrypoint, and a failure still stops it.
#
# readonly = 1 blocks DDL, DML and SET; max_execution_time stays CHANGEABLE_IN_READONLY because
# the Grafana plugin's driver sets it on every query (without it: "Cannot modify
# 'max_execution_time': Setting is locked"), and the API sets both it and max_memory_usage on
# every query (MOTCUA_API_QUERY_SECONDS, MOTCUA_API_QUERY_MEMORY_MB), with short-circuit
# evaluation off (core/storage/clickhouse.py READER_SETTINGS). MAX bounds what a client may
# ask for.
# Re-running (CLICKHOUSE_ALWAYS_RUN_INITDB_SCRIPTS=1) recreates the entities and so rotates the
# passwords; OR REPLACE drops grants, which is why the GRANTs follow their CREATEs.
(
  set -euo pipefail
  : "${CLICKHOUSE_USER:?}" "${CLICKHOUSE_PASSWORD:?}"
  : "${CH_GRAFANA_PASSWORD:?CH_GRAFANA_PASSWORD is not set}"
  : "${CH_API_PASSWORD:?CH_API_PASSWORD is not set}"
  : "${CH_INGEST_PASSWORD:?CH_INGEST_PASSWORD is not set}"
  : "${CH_METRICS_PASSWORD:?CH_METRICS_PASSWORD is not set}"
  db="${CLICKHOUSE_DB:-motcua}"

  # A ClickHouse string literal: backslash and single quote escaped.
  sql_string() {
    local s=${1//\\/\\\\}
    printf "'%s'" "${s//\'/\\\'}"
  }

  clickhouse client --host 127.0.0.1 --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" \
    --multiquery <<SQL
CREATE SETTINGS PROFILE OR REPLACE motcua_readonly SETTINGS
    readonly = 1,
    max_execution_time = 60 MAX 300 CHANGEABLE_IN_READONLY,
    max_memory_usage = 1073741824 MAX 4294967296 CHANGEABLE_IN_READONLY,
    max_result_rows = 1000000, result_overflow_mode = 'throw',
    max_concurrent_queries_for_user = 32,
    short_circuit_function_evaluation = 'enable' CHANGEABLE_IN_READONLY;

CREATE SETTINGS PROFILE OR REPLACE motcua_boards SETTINGS
    readonly = 1,
    max_execution_time = 30 MAX 60 CHANGEABLE_IN_READONLY,
    max_memory_usage = 536870912 MAX 1073741824 CHANGEABLE_IN_READONLY,
    max_result_rows = 100000, result_overflow_mode = 'throw',
    max_concurrent_queries_for_user = 8;

CREATE SETTINGS PROFILE OR REPLACE motcua_writers SETTINGS
    max_execution_time = 900 MAX 3600,
    max_memory_usage = 4294967296 MAX 8589934592;

CREATE ROLE OR REPLACE motcua_reader;
GRANT SELECT ON \`${db}\`.* TO motcua_reader;

CREATE ROLE OR REPLACE motcua_board_reader;
GRANT SELECT ON \`${db}\`.* TO motcua_board_reader;
REVOKE SELECT ON \`${db}\`.api_keys FROM motcua_board_reader;
REVOKE SELECT(raw) ON \`${db}\`.dead_letters FROM motcua_board_reader;

CREATE ROLE OR REPLACE motcua_ingest_writer;
GRANT SELECT, INSERT ON \`${db}\`.* TO motcua_ingest_writer;
REVOKE SELECT, INSERT ON \`${db}\`.api_keys FROM motcua_ingest_writer;

CREATE ROLE OR REPLACE motcua_metrics_writer;
GRANT SELECT, INSERT, ALTER DELETE ON \`${db}\`.* TO motcua_metrics_writer;
REVOKE SELECT, INSERT, ALTER DELETE ON \`${db}\`.api_keys FROM motcua_metrics_writer;
REVOKE SELECT(raw) ON \`${db}\`.dead_letters FROM motcua_metrics_writer;

CREATE USER OR REPLACE grafana_ro IDENTIFIED WITH sha256_password BY $(sql_string "$CH_GRAFANA_PASSWORD")
    DEFAULT DATABASE \`${db}\` SETTINGS PROFILE 'motcua_boards';
CREATE USER OR REPLACE api_ro IDENTIFIED WITH sha256_password BY $(sql_string "$CH_API_PASSWORD")
    DEFAULT DATABASE \`${db}\` SETTINGS PROFILE 'motcua_readonly';
CREATE USER OR REPLACE motcua_ingest IDENTIFIED WITH sha256_password BY $(sql_string "$CH_INGEST_PASSWORD")
    DEFAULT DATABASE \`${db}\` SETTINGS PROFILE 'motcua_writers';
CREATE USER OR REPLACE motcua_metrics IDENTIFIED WITH sha256_password BY $(sql_string "$CH_METRICS_PASSWORD")
    DEFAULT DATABASE \`${db}\` SETTINGS PROFILE 'motcua_writers';

-- Without DEFAULT ROLE a user's default roles are ALL granted ones, so the grant is active at login.
GRANT motcua_reader TO api_ro;
GRANT motcua_board_reader TO grafana_ro;
GRANT motcua_ingest_writer TO motcua_ingest;
GRANT motcua_metrics_writer TO motcua_metrics;
SQL
  echo "01_users.sh: created motcua_ingest, motcua_metrics, api_ro and grafana_ro on ${db}"
)
