"""The ClickHouse datasource: the provisioning file is the single definition; `sync` sends the same
settings through the API, with the password that the file leaves to Grafana's environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from services.grafana.model import DATASOURCE_UID

DATASOURCE_FILE = Path("provisioning/datasources/clickhouse.yaml")


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
