"""Grafana-managed alert rules: one definition, two renderings — the file provisioning format
(deploy/grafana/provisioning/alerting/) and the HTTP provisioning API body (`motcua grafana sync`).

Each query returns a table with one numeric column and string columns, which Grafana alerts on as
one labelled number per row ("alerting on numeric data"), so one rule covers every target and
agency, and a threshold expression decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.zone import TZ
from tools.grafana.model import DATASOURCE, DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID, TABLE

GROUP = "motcua"
GROUP_INTERVAL_S = 60
INGEST_STALE_S = 3600  # no event stored for an hour, in office hours, means intake is broken
METRICS_STALE_S = 7200  # the metrics service rewrites every figure at least hourly


@dataclass(frozen=True)
class AlertRule:
    uid: str
    title: str
    sql: str
    threshold: float  # fires when the value is above it
    lookback_s: int  # relative time range of the query ($__timeFilter)
    for_: str
    severity: str
    summary: str
    description: str
    no_data: str = "OK"
    columns: tuple[tuple[str, str], ...] = ()  # (name, ClickHouse type), checked by the tests

    def data(self) -> list[dict[str, Any]]:
        return [
            {
                "refId": "A",
                "queryType": "",
                "relativeTimeRange": {"from": self.lookback_s, "to": 0},
                "datasourceUid": DATASOURCE_UID,
                "model": {
                    "refId": "A",
                    "datasource": DATASOURCE,
                    "editorType": "sql",
                    "format": TABLE,
                    "queryType": "table",
                    "rawSql": self.sql,
                    "intervalMs": 1000,
                    "maxDataPoints": 43200,
                },
            },
            {
                "refId": "C",
                "queryType": "",
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "C",
                    "type": "threshold",
                    "expression": "A",
                    "datasource": {"type": "__expr__", "uid": "__expr__"},
                    "conditions": [{"evaluator": {"type": "gt", "params": [self.threshold]}}],
                },
            },
        ]

    def _common(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "condition": "C",
            "data": self.data(),
            "noDataState": self.no_data,
            "execErrState": "Error",
            "for": self.for_,
            "annotations": {"summary": self.summary, "description": self.description},
            "labels": {"team": "motcua", "severity": self.severity},
            "isPaused": False,
        }

    def api_body(self) -> dict[str, Any]:
        """POST/PUT /api/v1/provisioning/alert-rules."""
        return {**self._common(), "folderUID": FOLDER_UID, "ruleGroup": GROUP, "orgID": 1}

    def file_rule(self) -> dict[str, Any]:
        return self._common()


TARGET_AT_RISK = AlertRule(
    uid="motcua-target-at-risk",
    title="Mục tiêu kế hoạch có nguy cơ không đạt hoặc không đạt",
    sql=(
        "SELECT toString(plan) AS plan, toString(target_id) AS target_id, "
        "if(agency_code = '', '(toàn phạm vi)', toString(agency_code)) AS agency, "
        "toFloat64(status IN ('at_risk', 'missed')) AS value FROM ("
        "SELECT plan, target_id, agency_code, period_start, "
        "argMax(status, evaluated_at) AS status FROM target_status "
        f"WHERE $__timeFilter(evaluated_at) AND period_end >= toDate(now(), '{TZ}') "
        "GROUP BY plan, target_id, agency_code, period_start)"
    ),
    threshold=0,
    lookback_s=2 * 3600,
    for_="0s",
    severity="warning",
    summary="{{ $labels.target_id }} ({{ $labels.plan }}), {{ $labels.agency }}: "
    "có nguy cơ không đạt hoặc đã không đạt",
    description="Trạng thái mới nhất (target_status, kỳ chưa kết thúc) là at_risk hoặc missed. "
    "Chi tiết: bảng Tổng quan tỉnh, GET /v1/targets.",
    columns=(
        ("plan", "LowCardinality(String)"),
        ("target_id", "LowCardinality(String)"),
        ("agency", "String"),
        ("value", "Float64"),
    ),
)

INGEST_STALE = AlertRule(
    uid="motcua-ingest-stale",
    title="Không có sự kiện mới được lưu",
    sql=("SELECT toFloat64(dateDiff('second', max(ingested_at), now64(3))) AS seconds FROM events"),
    threshold=INGEST_STALE_S,
    lookback_s=600,
    for_="15m",
    severity="critical",
    summary="Sự kiện mới nhất được lưu cách đây {{ $values.A }} giây",
    description="Ingest dừng, NATS không nhận, hoặc các hệ thống gửi ngừng gửi. Xem bảng Sức khỏe "
    "hệ thống và GET /v1/pipeline.",
    no_data="Alerting",
    columns=(("seconds", "Float64"),),
)

METRICS_STALE = AlertRule(
    uid="motcua-metrics-stale",
    title="Số liệu không được tính lại",
    sql=(
        "SELECT toFloat64(dateDiff('second', max(computed_at), now64(3))) AS seconds "
        "FROM metric_snapshots"
    ),
    threshold=METRICS_STALE_S,
    lookback_s=600,
    for_="15m",
    severity="critical",
    summary="Số liệu được tính lần cuối cách đây {{ $values.A }} giây",
    description="Dịch vụ tính chỉ số ghi lại mọi số liệu ít nhất mỗi giờ; lâu hơn nghĩa là dịch vụ "
    "dừng hoặc lỗi (GET /v1/pipeline: trạng thái metrics).",
    no_data="Alerting",
    columns=(("seconds", "Float64"),),
)

DEAD_LETTERS = AlertRule(
    uid="motcua-dead-letters",
    title="Hệ thống gửi có sự kiện bị từ chối",
    sql=(
        "SELECT if(source = '', '(không đọc được)', toString(source)) AS integrator, "
        "toFloat64(count()) AS dead_letters FROM dead_letters "
        "WHERE $__timeFilter(dead_lettered_at) GROUP BY integrator"
    ),
    threshold=0,
    lookback_s=3600,
    for_="0s",
    severity="warning",
    summary="{{ $labels.integrator }}: {{ $values.A }} sự kiện bị từ chối trong 1 giờ qua",
    description="Xem lý do và bản gốc: GET /v1/dead-letters, bảng Sức khỏe hệ thống.",
    columns=(("integrator", "String"), ("dead_letters", "Float64")),
)

ALERT_RULES = (TARGET_AT_RISK, INGEST_STALE, METRICS_STALE, DEAD_LETTERS)


def provisioning_file() -> dict[str, Any]:
    """deploy/grafana/provisioning/alerting/motcua-rules.yaml."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": GROUP,
                "folder": FOLDER_TITLE,
                "interval": f"{GROUP_INTERVAL_S}s",
                "rules": [r.file_rule() for r in ALERT_RULES],
            }
        ],
    }
