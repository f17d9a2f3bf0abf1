"""The template variables every board shares: agency (multi, All), level, domain and plan.

Two-column variable queries give the value, then the text shown (tech-notes §1).
"""

from __future__ import annotations

from services.grafana.model import Query, Variable
from services.grafana.sql import labels

LEVEL_LABELS = {"province": "Cấp tỉnh", "district": "Cấp huyện", "commune": "Cấp xã"}

LEVEL = Variable(
    "level",
    "Cấp",
    Query(
        f"SELECT level AS __value, {labels('level', LEVEL_LABELS)} AS __text "
        "FROM (SELECT DISTINCT level FROM agencies_current) ORDER BY __value",
        (("__value", "String"), ("__text", "String")),
    ),
    description="Cấp của cơ quan trong cây tổ chức (lọc danh sách cơ quan và số liệu).",
)

# Every version of the org tree: an agency abolished on 1/7/2025 still has its history. The level
# filter uses the variable's own values, so it needs no $__conditionalAll here.
AGENCY = Variable(
    "agency",
    "Cơ quan",
    Query(
        "SELECT agency_code AS __value, "
        "concat(argMax(name, valid_from), ' (', agency_code, ')') AS __text "
        "FROM agencies_current WHERE level IN (${level:singlequote}) "
        "GROUP BY agency_code ORDER BY __value",
        (("__value", "String"), ("__text", "String")),
    ),
    description="Một hoặc nhiều cơ quan; số liệu của mỗi cơ quan là hồ sơ của chính cơ quan đó.",
)

DOMAIN = Variable(
    "domain",
    "Lĩnh vực",
    Query(
        "SELECT DISTINCT domain_code AS __value FROM dossier_intake_daily ORDER BY __value",
        (("__value", "LowCardinality(String)"),),
    ),
    description="Lĩnh vực TTHC (mã), áp dụng cho số liệu tiếp nhận hồ sơ.",
)

PLAN = Variable(
    "plan",
    "Kế hoạch",
    Query(
        "SELECT plan AS __value FROM target_status GROUP BY plan "
        "ORDER BY max(evaluated_at) DESC, __value",
        (("__value", "LowCardinality(String)"),),
    ),
    multi=False,
    include_all=False,
    description="Kế hoạch (mã@phiên bản) mà các mục tiêu được đánh giá theo.",
)

ALL_VARIABLES = (PLAN, LEVEL, AGENCY, DOMAIN)
