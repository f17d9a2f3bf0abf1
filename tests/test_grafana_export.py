"""The committed provisioning files are what the code generates, and they hang together:
fixed uids, the plugin's datasource everywhere, Vietnamese titles, compose mounting them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from tools.grafana import export
from tools.grafana.dashboards import all_dashboards
from tools.grafana.model import (
    API_DATASOURCE_TYPE,
    API_DATASOURCE_UID,
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    FOLDER_TITLE,
)

ROOT = Path(__file__).resolve().parents[1]
GRAFANA_DIR = ROOT / "deploy" / "grafana"

pytestmark = pytest.mark.pure


def test_committed_files_are_up_to_date() -> None:
    # Catches: a board or rule changed in code without `motcua grafana export` (Grafana would
    # keep serving the old JSON).
    assert export.stale(GRAFANA_DIR) == [], "run `motcua grafana export` and commit the result"


def test_export_writes_into_an_empty_directory(tmp_path: Path) -> None:
    # Catches: export depending on files already being there, or leaving stale boards behind.
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "old-board.json").write_text("{}")  # e.g. before the folder
    written = export.write(tmp_path)
    assert Path("dashboards/old-board.json") in written
    assert not (tmp_path / "dashboards" / "old-board.json").exists()
    assert export.stale(tmp_path) == []


def test_boards_reference_the_provisioned_datasources_by_uid() -> None:
    # Catches: a panel on another datasource, duplicate uids, English-only titles, a figure read
    # from anywhere but the API, an API target the datasource would refuse (another host).
    boards = [
        json.loads((GRAFANA_DIR / export.DASHBOARDS_DIR / f"{b.uid}.json").read_text())
        for b in all_dashboards()
    ]
    api = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/motcua-api.yaml").read_text())
    (api_source,) = api["datasources"]
    assert (api_source["uid"], api_source["type"]) == (API_DATASOURCE_UID, API_DATASOURCE_TYPE)
    assert len({b["uid"] for b in boards}) == len(boards)
    for board in boards:
        assert any(ord(c) > 127 for c in board["title"]), board["title"]
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert {"agency", "level", "scope"} <= set(variables)
        # one node of the tree (the province first), as the API means an agency
        assert not variables["agency"]["multi"] and not variables["agency"]["includeAll"]
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["uid"] == API_DATASOURCE_UID:
                    assert target["datasource"]["type"] == API_DATASOURCE_TYPE
                    assert target["parser"] == "backend" and target["source"] == "url"
                    assert target["url"].startswith("${api_url}/v1/")
                    assert variables["api_url"]["query"] in api_source["jsonData"]["allowedHosts"]
                    continue
                assert target["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
                assert target["editorType"] == "sql" and target["format"] in (0, 1)
                assert "metric_snapshots" not in target["rawSql"] or board["uid"].endswith(
                    "pipeline"
                ), panel["title"]  # figures come from the API; the pipeline shows snapshot age
    datasources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning/datasources/clickhouse.yaml").read_text()
    )
    (source,) = datasources["datasources"]
    assert (source["uid"], source["type"]) == (DATASOURCE_UID, DATASOURCE_TYPE)
    assert "defaultDatabase" in source["jsonData"] and "database" not in source["jsonData"]


def test_dashboards_and_rules_share_one_folder_and_compose_mounts_them() -> None:
    # Catches: rules provisioned into a folder the boards are not in, or files compose never mounts.
    provider = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/provider.yaml").read_text())
    rules = yaml.safe_load((GRAFANA_DIR / export.ALERTING_FILE).read_text())
    options = provider["providers"][0]["options"]
    assert options["foldersFromFilesStructure"]
    assert Path("dashboards") / FOLDER_TITLE == export.DASHBOARDS_DIR
    assert {g["folder"] for g in rules["groups"]} == {FOLDER_TITLE}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    users = (ROOT / "deploy/clickhouse/initdb/01_users.sh").read_text()
    assert "readonly = 1" in users and "CHANGEABLE_IN_READONLY" in users
