#!/bin/bash
# Read-only ClickHouse users for Grafana (grafana_ro) and the read API (api_ro), created by the
# clickhouse-server image's entrypoint on the first start of an empty data volume.
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
# evaluation off (services/storage/clickhouse.py READER_SETTINGS). MAX bounds what a client may
# ask for.
# Re-running (CLICKHOUSE_ALWAYS_RUN_INITDB_SCRIPTS=1) recreates the entities and so rotates the
# passwords; OR REPLACE drops grants, which is why the GRANTs follow their CREATEs.
(
  set -euo pipefail
  : "${CLICKHOUSE_USER:?}" "${CLICKHOUSE_PASSWORD:?}"
  : "${CH_GRAFANA_PASSWORD:?CH_GRAFANA_PASSWORD is not set}"
  : "${CH_API_PASSWORD:?CH_API_PASSWORD is not set}"
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
    short_circuit_function_evaluation = 'enable' CHANGEABLE_IN_READONLY;

CREATE ROLE OR REPLACE motcua_reader;
GRANT SELECT ON \`${db}\`.* TO motcua_reader;

CREATE USER OR REPLACE grafana_ro IDENTIFIED WITH sha256_password BY $(sql_string "$CH_GRAFANA_PASSWORD")
    DEFAULT DATABASE \`${db}\` SETTINGS PROFILE 'motcua_readonly';
CREATE USER OR REPLACE api_ro IDENTIFIED WITH sha256_password BY $(sql_string "$CH_API_PASSWORD")
    DEFAULT DATABASE \`${db}\` SETTINGS PROFILE 'motcua_readonly';

-- Without DEFAULT ROLE a user's default roles are ALL granted ones, so the grant is active at login.
GRANT motcua_reader TO grafana_ro, api_ro;
SQL
  echo "01_users.sh: created grafana_ro and api_ro (read-only on ${db})"
)
