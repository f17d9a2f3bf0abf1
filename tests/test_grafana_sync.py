"""`motcua grafana sync` against an HTTP test double of Grafana's API.

No Grafana server can run here, so GrafanaDouble is a real local HTTP server (http.server in a
thread) that implements the few routes sync uses and checks the contract on every request: path,
method, the Bearer token, the body's shape, references between objects (folder, datasource uid),
and that no id-based datasource route is used (Grafana 13 disables them). It stores what it is
sent and answers reads with it plus the fields Grafana adds (id, version, provenance).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from grafana_client.client import GrafanaUnauthorizedError

from motcua.cli import main
from tools.grafana.alerting import ALERT_RULES
from tools.grafana.dashboards import all_dashboards
from tools.grafana.model import (
    API_DATASOURCE_TYPE,
    API_DATASOURCE_UID,
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    FOLDER_UID,
)
from tools.grafana.sync import sync

GRAFANA_DIR = Path(__file__).resolve().parents[1] / "deploy" / "grafana"
TOKEN = "glsa_test_token"
KEY = "a-viewer-key-for-the-boards-0123456789"


class GrafanaDouble:
    """State and contract checks; `violations` must stay empty."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []
        self.next_id = 1

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.violations.append(what)
        return ok

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path))
        routes = [
            ("GET", r"/api/folders/([\w-]+)", self.get_folder),
            ("POST", r"/api/folders", self.create_folder),
            ("PUT", r"/api/folders/([\w-]+)", self.update_folder),
            ("GET", r"/api/datasources/uid/([\w-]+)", self.get_datasource),
            ("POST", r"/api/datasources", self.create_datasource),
            ("PUT", r"/api/datasources/uid/([\w-]+)", self.update_datasource),
            ("GET", r"/api/dashboards/uid/([\w-]+)", self.get_dashboard),
            ("POST", r"/api/dashboards/db", self.save_dashboard),
            ("GET", r"/api/v1/provisioning/alert-rules/([\w-]+)", self.get_rule),
            ("POST", r"/api/v1/provisioning/alert-rules", self.create_rule),
            ("PUT", r"/api/v1/provisioning/alert-rules/([\w-]+)", self.update_rule),
        ]
        for m, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if m == method and match:
                return handler(body, *match.groups())
        self.violations.append(f"unexpected {method} {path}")
        return 404, {"message": "not found"}

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    # folders
    def get_folder(self, _: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        return 200, self.folders[uid]

    def create_folder(self, body: Any, *_: str) -> tuple[int, Any]:
        if not self.check(
            set(body) <= {"title", "uid", "parentUid"} and body.get("title"), "folder body"
        ):
            return 400, {"message": "bad folder"}
        if body.get("uid") in self.folders:
            return 409, {"message": "folder exists"}
        self.folders[body["uid"]] = {
            "id": self._id(),
            "uid": body["uid"],
            "title": body["title"],
            "version": 1,
        }
        return 200, self.folders[body["uid"]]

    def update_folder(self, body: Any, uid: str) -> tuple[int, Any]:
        if not self.check(uid in self.folders and "title" in body, "folder update"):
            return 404, {"message": "folder not found"}
        self.folders[uid]["title"] = body["title"]
        return 200, self.folders[uid]

    # datasources
    def _datasource_ok(self, body: Any) -> bool:
        j = body.get("jsonData", {})
        if body.get("uid") == API_DATASOURCE_UID:
            # Infinity's settings (src/types/config.types.ts): a bearer token needs allowed hosts
            return self.check(
                body.get("type") == API_DATASOURCE_TYPE
                and body.get("access") == "proxy"
                and j.get("auth_method") == "bearerToken"
                and bool(j.get("allowedHosts")),
                f"API datasource body {body}",
            )
        return self.check(
            body.get("type") == DATASOURCE_TYPE
            and body.get("uid") == DATASOURCE_UID
            and body.get("access") == "proxy"
            and {"host", "port", "protocol", "username", "defaultDatabase"} <= set(j)
            and "database" not in j,  # the key the plugin never reads (tech-notes §1)
            f"datasource body {body}",
        )

    @staticmethod
    def _secret(body: Any) -> str:
        return "bearerToken" if body.get("uid") == API_DATASOURCE_UID else "password"

    def get_datasource(self, _: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        return 200, self.datasources[uid]

    def _store_datasource(self, body: Any, created: bool) -> dict[str, Any]:
        stored = {k: v for k, v in body.items() if k != "secureJsonData"}
        old = self.datasources.get(body["uid"], {})
        secret = self._secret(body)
        has_secret = bool(body.get("secureJsonData", {}).get(secret)) or bool(
            old.get("secureJsonFields", {}).get(secret)
        )
        stored |= {"id": old.get("id", self._id()), "orgId": 1, "readOnly": False}
        stored["secureJsonFields"] = {secret: True} if has_secret else {}
        self.datasources[body["uid"]] = stored
        return stored

    def create_datasource(self, body: Any, *_: str) -> tuple[int, Any]:
        if not self._datasource_ok(body) or not self.check(
            bool(body.get("secureJsonData", {}).get(self._secret(body))),
            "datasource created without its secret",
        ):
            return 400, {"message": "bad datasource"}
        return 200, {
            "datasource": self._store_datasource(body, True),
            "message": "Datasource added",
        }

    def update_datasource(self, body: Any, uid: str) -> tuple[int, Any]:
        if not self._datasource_ok(body) or uid not in self.datasources:
            return 400, {"message": "bad datasource"}
        return 200, {"datasource": self._store_datasource(body, False), "message": "updated"}

    # dashboards
    def get_dashboard(self, _: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        return 200, self.dashboards[uid]

    def save_dashboard(self, body: Any, *_: str) -> tuple[int, Any]:
        d = body.get("dashboard", {})
        ok = self.check(
            body.get("overwrite") is True
            and body.get("folderUid") in self.folders
            and d.get("uid")
            and d.get("id") is None
            and d.get("title"),
            f"dashboard envelope {set(body)}",
        )
        refs = {t["datasource"]["uid"] for p in d.get("panels", []) for t in p.get("targets", [])}
        variables = d.get("templating", {}).get("list", [])
        # constants and custom lists have no datasource; query variables must name one
        refs |= {v["datasource"]["uid"] for v in variables if v.get("type") == "query"}
        ok = ok and self.check(refs <= set(self.datasources), f"unknown datasource in {refs}")
        if not ok:
            return 400, {"message": "bad dashboard"}
        old = self.dashboards.get(d["uid"], {}).get("dashboard", {})
        version = old.get("version", 0) + 1
        stored = {**d, "id": old.get("id", self._id()), "version": version}
        self.dashboards[d["uid"]] = {"dashboard": stored, "meta": {"folderUid": body["folderUid"]}}
        return 200, {"status": "success", "uid": d["uid"], "version": version}

    # alert rules
    def _rule_ok(self, body: Any) -> bool:
        refs = {q["refId"] for q in body.get("data", [])}
        sources = {q["datasourceUid"] for q in body.get("data", [])}
        return self.check(
            {"uid", "title", "folderUID", "ruleGroup", "condition", "data", "for"} <= set(body)
            and body["folderUID"] in self.folders
            and body["condition"] in refs
            and sources <= set(self.datasources) | {"__expr__"}
            and body.get("noDataState") in {"OK", "NoData", "Alerting", "KeepLast"}
            and body.get("execErrState") in {"OK", "Error", "Alerting", "KeepLast"},
            f"alert rule body {body.get('uid')}",
        )

    def get_rule(self, _: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.rules:
            return 404, {"message": "rule not found"}
        return 200, self.rules[uid]

    def _store_rule(self, body: Any) -> dict[str, Any]:
        old = self.rules.get(body["uid"], {})
        stored = {**body, "id": old.get("id", self._id()), "updated": "2026-11-28T00:00:00Z"}
        stored["provenance"] = "api"
        self.rules[body["uid"]] = stored
        return stored

    def create_rule(self, body: Any, *_: str) -> tuple[int, Any]:
        if not self._rule_ok(body) or body["uid"] in self.rules:
            return 400, {"message": "bad rule"}
        return 201, self._store_rule(body)

    def update_rule(self, body: Any, uid: str) -> tuple[int, Any]:
        if not self._rule_ok(body) or uid not in self.rules or body["uid"] != uid:
            return 400, {"message": "bad rule"}
        return 200, self._store_rule(body)


@pytest.fixture
def grafana() -> Iterator[tuple[str, GrafanaDouble]]:
    state = GrafanaDouble()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, payload = 401, {"message": "Unauthorized"}
            else:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if raw and not self.headers.get("Content-Type", "").startswith("application/json"):
                    state.violations.append(f"{self.command} {self.path}: body is not JSON")
                body = json.loads(raw) if raw else None
                status, payload = state.handle(self.command, self.path.split("?")[0], body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def _expected_count() -> int:
    return 3 + len(all_dashboards()) + len(ALERT_RULES)  # the folder and two datasources


def test_sync_creates_then_changes_nothing(grafana: tuple[str, GrafanaDouble]) -> None:
    # Catches: a non-idempotent sync (a second run that rewrites), wrong paths or bodies.
    url, state = grafana
    first = sync(url, TOKEN, GRAFANA_DIR, clickhouse_password="secret", api_key=KEY)
    assert state.violations == []
    assert [c.action for c in first] == ["created"] * _expected_count()
    assert set(state.dashboards) == {b.uid for b in all_dashboards()}
    assert set(state.rules) == {r.uid for r in ALERT_RULES}
    assert all(d["meta"]["folderUid"] == FOLDER_UID for d in state.dashboards.values())

    state.requests.clear()
    second = sync(url, TOKEN, GRAFANA_DIR, clickhouse_password="secret", api_key=KEY)
    assert [c.action for c in second] == ["unchanged"] * _expected_count()
    assert {m for m, _ in state.requests} == {"GET"}, "the second run must write nothing"
    assert state.violations == []


def test_sync_repairs_drift_by_uid(grafana: tuple[str, GrafanaDouble]) -> None:
    # Catches: drift (a dashboard edited in Grafana, a rule changed) left in place, or everything
    # rewritten when one object drifted.
    url, state = grafana
    sync(url, TOKEN, GRAFANA_DIR, clickhouse_password="secret", api_key=KEY)
    state.dashboards["motcua-land"]["dashboard"]["title"] = "edited in the UI"
    state.rules["motcua-ingest-stale"]["for"] = "1h"
    state.requests.clear()
    changes = sync(url, TOKEN, GRAFANA_DIR)  # no password: the stored one is kept
    changed = {(c.kind, c.uid) for c in changes if c.action != "unchanged"}
    assert changed == {("dashboard", "motcua-land"), ("alert-rule", "motcua-ingest-stale")}
    assert state.dashboards["motcua-land"]["dashboard"]["title"].startswith("Lĩnh vực đất đai")
    assert ("PUT", "/api/v1/provisioning/alert-rules/motcua-ingest-stale") in state.requests
    assert ("POST", "/api/dashboards/db") in state.requests
    assert state.violations == []


def test_sync_refuses_a_wrong_token(grafana: tuple[str, GrafanaDouble]) -> None:
    # Catches: a token not sent as a Bearer header (the double answers 401 to anything else).
    url, state = grafana
    with pytest.raises(GrafanaUnauthorizedError):
        sync(url, "wrong", GRAFANA_DIR, clickhouse_password="secret")
    assert state.folders == {}


def test_cli_sync(grafana: tuple[str, GrafanaDouble], capsys: pytest.CaptureFixture[str]) -> None:
    # Catches: the `motcua grafana sync` wiring (arguments, token, password, report).
    url, state = grafana
    args = ["grafana", "sync", "--url", url, "--token", TOKEN, "--dir", str(GRAFANA_DIR)]
    main([*args, "--clickhouse-password", "secret", "--api-key", KEY])
    main(args)
    out = capsys.readouterr()
    assert "created   dashboard motcua-overview" in out.out
    assert "unchanged dashboard motcua-overview" in out.out
    assert f"0 created, 0 updated, {_expected_count()} unchanged" in out.err
    assert state.violations == []
