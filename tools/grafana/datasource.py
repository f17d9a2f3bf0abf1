"""The datasources (ClickHouse, and the motcua API through Infinity): each provisioning file is the
single definition; `sync` sends the same settings through Grafana's API, with the secret that the
file leaves to Grafana's environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from tools.grafana.model import API_DATASOURCE_UID, DATASOURCE_UID

DATASOURCE_FILE = Path("provisioning/datasources/clickhouse.yaml")
API_DATASOURCE_FILE = Path("provisioning/datasources/motcua-api.yaml")
# The secret each datasource keeps write-only (secureJsonData, reported in secureJsonFields).
SECRET_FIELDS = {DATASOURCE_UID: "password", API_DATASOURCE_UID: "bearerToken"}


def _body(
    grafana_dir: Path,
    file: Path,
    uid: str,
    json_data: dict[str, Any],
    secret: tuple[str, str | None],
) -> dict[str, Any]:
    """POST /api/datasources or PUT /api/datasources/uid/{uid} body, from a provisioning file:
    its jsonData updated with `json_data`, and the secret (field, value) sent only when given
    (None keeps the stored one: Grafana never reads it back)."""
    document = yaml.safe_load((grafana_dir / file).read_text(encoding="utf-8"))
    (source,) = [d for d in document["datasources"] if d["uid"] == uid]
    body: dict[str, Any] = {
        "name": source["name"],
        "uid": source["uid"],
        "type": source["type"],
        "access": "proxy",
        "isDefault": bool(source.get("isDefault", False)),
        "jsonData": {**source["jsonData"], **json_data},
    }
    field, value = secret
    if value is not None:
        body["secureJsonData"] = {field: value}
    return body


def datasource_body(
    grafana_dir: Path, password: str | None, host: str | None = None
) -> dict[str, Any]:
    """The ClickHouse datasource. `password`: None keeps the stored one; `host` overrides
    jsonData.host for a Grafana outside the compose network."""
    overrides = {"host": host} if host else {}
    secret = (SECRET_FIELDS[DATASOURCE_UID], password)
    return _body(grafana_dir, DATASOURCE_FILE, DATASOURCE_UID, overrides, secret)


def api_datasource_body(grafana_dir: Path, key: str | None, api_url: str) -> dict[str, Any]:
    """The motcua API datasource (Infinity), allowed to reach `api_url` (the dashboards'
    constant); `key`: the viewer API key, None keeps the stored one."""
    return _body(
        grafana_dir,
        API_DATASOURCE_FILE,
        API_DATASOURCE_UID,
        {"allowedHosts": [api_url]},
        (SECRET_FIELDS[API_DATASOURCE_UID], key),
    )
