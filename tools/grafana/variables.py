"""The template variables every board shares: the agency and whether its subtree counts, the
level (narrows the agency list), the domain (intake by domain), the plan, and the API's address.

Two-column variable queries give the value, then the text shown (tech-notes §1).
"""

from __future__ import annotations

import os

from tools.grafana.model import Choice, Constant, Query, Variable
from tools.grafana.sql import labels

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

# One node of the org tree, the province first (the default): a figure of a node is the API's,
# the node with everything under it in the tree of the period's end (or the node alone: SCOPE).
# Every version of the tree is listed: an agency abolished on 1/7/2025 still has its history.
AGENCY = Variable(
    "agency",
    "Cơ quan",
    Query(
        "SELECT agency_code AS __value, "
        "concat(argMax(name, valid_from), ' (', agency_code, ')') AS __text "
        "FROM agencies_current WHERE level IN (${level:singlequote}) "
        "GROUP BY agency_code ORDER BY countIf(parent_code IS NULL) = 0, __value",
        (("__value", "String"), ("__text", "String")),
    ),
    multi=False,
    include_all=False,
    description="Cơ quan (mặc định: toàn tỉnh). Số liệu của cơ quan gồm các đơn vị trực thuộc "
    "theo cây tổ chức cuối kỳ, như API; chọn Phạm vi = Riêng cơ quan để xem hồ sơ của chính "
    "cơ quan.",
)

SCOPE = Choice(
    "scope",
    "Phạm vi",
    (("true", "Cả đơn vị trực thuộc"), ("false", "Riêng cơ quan")),
    description="Cả đơn vị trực thuộc: cơ quan và mọi đơn vị dưới nó trong cây tổ chức cuối kỳ "
    "(như API, rollup=true); Riêng cơ quan: chỉ hồ sơ của chính cơ quan.",
)

# Where Grafana reaches the API: the compose service by default; `motcua grafana sync` and
# `export` take MOTCUA_GRAFANA_API_URL for another address.
API_URL = Constant(
    "api_url",
    os.environ.get("MOTCUA_GRAFANA_API_URL", "http://api:8000").rstrip("/"),
    description="Địa chỉ API motcua mà Grafana đọc số liệu (nguồn dữ liệu Infinity).",
)

DOMAIN = Variable(
    "domain",
    "Lĩnh vực",
    Query(
        "SELECT DISTINCT domain_code AS __value FROM procedures WHERE domain_code != '' "
        "ORDER BY __value",
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

ALL_VARIABLES = (PLAN, LEVEL, AGENCY, SCOPE, DOMAIN, API_URL)
