"""The datasources (ClickHouse, and the motcua API through Infinity): each provisioning file is the
single definition; `sync` sends the same settings through Grafana's API, with the secret that the
file leaves to Grafana's environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from services.grafana.model import API_DATASOURCE_UID, DATASOURCE_UID

DATASOURCE_FILE = Path("provisioning/datasources/clickhouse.yaml")
API_DATASOURCE_FILE = Path("provisioning/datasources/motcua-api.yaml")


def datasource_body(
    grafana_dir: Path, password: str | None, host: str | None = None
) -> dict[str, Any]:
    """POST /api/datasources or PUT /api/datasources/uid/{uid} body, from the provisioning file.
    `password`: None keeps the stored one (sent only when given); `host` overrides jsonData.host
    for a Grafana outside the compose network."""
    document = yaml.safe_load((grafana_dir / DATASOURCE_FILE).read_text(encoding="utf-8"))
    (source,) = [d for d in document["datasources"] if d["uid"] == DATASOURCE_UID]
    json_data = dict(source["jsonData"])
    if host:
        json_data["host"] = host
    body: dict[str, Any] = {
        "name": source["name"],
        "uid": source["uid"],
        "type": source["type"],
        "access": "proxy",
        "isDefault": bool(source.get("isDefault", False)),
        "jsonData": json_data,
    }
    if password is not None:
        body["secureJsonData"] = {"password": password}
    return body


def api_datasource_body(grafana_dir: Path, key: str | None, api_url: str) -> dict[str, Any]:
    """The motcua API datasource (Infinity) from its provisioning file, allowed to reach
    `api_url` (the dashboards' constant); `key`: the viewer API key, None keeps the stored one."""
    document = yaml.safe_load((grafana_dir / API_DATASOURCE_FILE).read_text(encoding="utf-8"))
    (source,) = [d for d in document["datasources"] if d["uid"] == API_DATASOURCE_UID]
    body: dict[str, Any] = {
        "name": source["name"],
        "uid": source["uid"],
        "type": source["type"],
        "access": "proxy",
        "isDefault": bool(source.get("isDefault", False)),
        "jsonData": {**source["jsonData"], "allowedHosts": [api_url]},
    }
    if key is not None:
        body["secureJsonData"] = {"bearerToken": key}
    return body
