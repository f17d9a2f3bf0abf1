"""`motcua grafana sync`: push the folder, the datasource, every dashboard and every alert rule to
a running Grafana through grafana-client, by uid, idempotently.

Each object is read back first (GET by uid) and compared with what the code generates: equal means
"unchanged" and nothing is written, so a second run writes nothing. A 404 means "create".
The datasource's password cannot be read back: it is sent on create, or whenever the datasource
is written, or always with `force`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError

from tools.grafana.alerting import ALERT_RULES
from tools.grafana.dashboards import all_dashboards
from tools.grafana.datasource import SECRET_FIELDS, api_datasource_body, datasource_body
from tools.grafana.model import FOLDER_TITLE, FOLDER_UID
from tools.grafana.variables import API_URL

Action = Literal["created", "updated", "unchanged"]
MESSAGE = "motcua grafana sync"


@dataclass(frozen=True)
class Change:
    kind: str  # folder | datasource | dashboard | alert-rule
    uid: str
    action: Action


def _get(read: Callable[[], Any]) -> Any | None:
    try:
        return read()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _subset_equal(desired: Any, current: Any) -> bool:
    """Whether every key we set has our value (Grafana adds ids, versions, timestamps)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(
            k in current and _subset_equal(v, current[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(desired) == len(current)
            and all(_subset_equal(d, c) for d, c in zip(desired, current, strict=True))
        )
    return bool(desired == current)


def sync_folder(api: Any) -> Change:
    current = _get(lambda: api.folder.get_folder(FOLDER_UID))
    if current is None:
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        return Change("folder", FOLDER_UID, "created")
    if current.get("title") == FOLDER_TITLE:
        return Change("folder", FOLDER_UID, "unchanged")
    api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
    return Change("folder", FOLDER_UID, "updated")


def _sync_datasource(
    api: Any, body: dict[str, Any], has_secret: bool, missing: str, force: bool
) -> Change:
    """Create or update one datasource by uid. Its secret cannot be read back: a datasource
    without one must be created with it (`missing` says how), and one that has it is left alone
    while its other settings are as desired."""
    uid = body["uid"]
    current = _get(lambda: api.datasource.get_datasource_by_uid(uid))
    if current is None:
        if not has_secret:
            raise SystemExit(missing)
        api.datasource.create_datasource(body)
        return Change("datasource", uid, "created")
    settings = {k: v for k, v in body.items() if k != "secureJsonData"}
    stored = bool((current.get("secureJsonFields") or {}).get(SECRET_FIELDS[uid]))
    if not force and stored and _subset_equal(settings, current):
        return Change("datasource", uid, "unchanged")
    api.datasource.update_datasource_by_uid(uid, body)
    return Change("datasource", uid, "updated")


def sync_datasource(
    api: Any, grafana_dir: Path, password: str | None, host: str | None, force: bool
) -> Change:
    body = datasource_body(grafana_dir, password, host)
    missing = "the datasource does not exist yet: give --clickhouse-password"
    return _sync_datasource(api, body, password is not None, missing, force)


def sync_api_datasource(api: Any, grafana_dir: Path, key: str | None, force: bool) -> Change:
    body = api_datasource_body(grafana_dir, key, API_URL.value)
    missing = "the API datasource does not exist yet: give --api-key"
    return _sync_datasource(api, body, key is not None, missing, force)


def sync_dashboards(api: Any, force: bool) -> list[Change]:
    changes = []
    for board in all_dashboards():
        desired = board.to_json()
        current = _get(partial(api.dashboard.get_dashboard, board.uid))
        if current is not None and not force:
            stored = {k: v for k, v in current["dashboard"].items() if k not in ("id", "version")}
            in_folder = (current.get("meta") or {}).get("folderUid") == FOLDER_UID
            if stored == desired and in_folder:
                changes.append(Change("dashboard", board.uid, "unchanged"))
                continue
        api.dashboard.update_dashboard(
            {
                "dashboard": {**desired, "id": None},
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": MESSAGE,
            }
        )
        changes.append(Change("dashboard", board.uid, "created" if current is None else "updated"))
    return changes


def sync_alert_rules(api: Any, force: bool) -> list[Change]:
    changes = []
    for rule in ALERT_RULES:
        body = rule.api_body()
        current = _get(partial(api.alertingprovisioning.get_alertrule, rule.uid))
        if current is None:
            api.alertingprovisioning.create_alertrule(body)
            changes.append(Change("alert-rule", rule.uid, "created"))
        elif force or not _subset_equal(body, current):
            api.alertingprovisioning.update_alertrule(rule.uid, body)
            changes.append(Change("alert-rule", rule.uid, "updated"))
        else:
            changes.append(Change("alert-rule", rule.uid, "unchanged"))
    return changes


def sync(
    url: str,
    token: str,
    grafana_dir: Path,
    *,
    clickhouse_password: str | None = None,
    clickhouse_host: str | None = None,
    api_key: str | None = None,
    force: bool = False,
    timeout: float = 10.0,
) -> list[Change]:
    """Everything, in dependency order: folder, datasource, dashboards, alert rules."""
    # grafana-client is untyped: its methods return decoded JSON.
    api: Any = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    return [
        sync_folder(api),
        sync_datasource(api, grafana_dir, clickhouse_password, clickhouse_host, force),
        sync_api_datasource(api, grafana_dir, api_key, force),
        *sync_dashboards(api, force),
        *sync_alert_rules(api, force),
    ]
