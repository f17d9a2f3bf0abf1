"""A real headless chromium driven over the DevTools protocol, through a pipe (no WebSocket
library needed): to follow links as a visitor does and see what the browser got, status and
downloads included, which `--dump-dom` cannot show (a 401 and a CSV download both dump an empty
or error page).

The protocol (https://chromedevtools.github.io/devtools-protocol/) runs over fds 3 and 4 of the
browser with `--remote-debugging-pipe`: JSON messages ended by a NUL byte.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import HEADLESS_CHROMIUM

# A browser that neither answers nor exits must fail the test, not hang it: not a timing check.
_STUCK_SECONDS = 60


@dataclass(frozen=True)
class Visit:
    url: str
    status: int
    mime_type: str
    body: bytes  # the page's text as the browser got it, or the downloaded file


class Browser:
    def __init__(self, chromium: str) -> None:
        self._profile = tempfile.TemporaryDirectory()
        self.downloads = Path(self._profile.name) / "downloads"
        self.downloads.mkdir()
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            *HEADLESS_CHROMIUM,
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}",
            "about:blank",
        ]
        # The browser's fds 3 and 4, whatever numbers the pipes got here: moved by a small
        # Python step before exec (a shell's `3<&12` fails with dash, whose fds stop at 9, and
        # preexec_fn is unsafe in a process with threads). Copied high first, so a pipe that
        # already is fd 3 or 4 is not overwritten before it is moved.
        move = (
            "import fcntl, os, sys; "
            "r, w = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3]); "
            "os.dup2(r, 3); os.dup2(w, 4); os.execv(sys.argv[3], sys.argv[3:])"
        )
        self._process = subprocess.Popen(
            [sys.executable, "-c", move, str(to_browser_r), str(from_browser_w), chromium, *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.send(
            "Browser.setDownloadBehavior",
            behavior="allow",
            downloadPath=str(self.downloads),
            eventsEnabled=True,
        )
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.send("Network.enable", session=True)
        self.send("Page.enable", session=True)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        finally:
            self._process.wait(timeout=_STUCK_SECONDS)
            os.close(self._to_browser)
            os.close(self._from_browser)
            self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._receive()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], _STUCK_SECONDS)
            if not ready:
                raise AssertionError("the browser stopped answering")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise AssertionError("the browser exited")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def _event(self, method: str, match: Any) -> dict[str, Any]:
        """The first event `method` whose params satisfy `match`, seen or still to come."""
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and match(event["params"]):
                    return self.events.pop(i)["params"]
            self.events.append(self._receive())

    def visit(self, url: str) -> Visit:
        """Go to `url` as a visitor following a link: what the server answered, and the page's
        text, or the file the browser downloaded."""
        self.events.clear()
        navigation = self.send("Page.navigate", session=True, url=url)
        loader = navigation.get("loaderId")
        response = self._event(
            "Network.responseReceived",
            lambda p: p.get("type") == "Document" and p.get("loaderId") == loader,
        )["response"]
        if "errorText" in navigation:  # not shown: a download (net::ERR_ABORTED)
            done = self._event(
                "Browser.downloadProgress", lambda p: p["state"] in ("completed", "canceled")
            )
            assert done["state"] == "completed", done
            files = sorted(self.downloads.iterdir(), key=lambda f: f.stat().st_mtime)
            body = files[-1].read_bytes()
        else:
            self._event("Page.loadEventFired", lambda p: True)
            text = self.send(
                "Runtime.evaluate",
                session=True,
                expression="document.body ? document.body.innerText : ''",
                returnByValue=True,
            )
            body = str(text["result"].get("value", "")).encode()
        return Visit(url, int(response["status"]), str(response["mimeType"]), body)

    def links(self, selector: str) -> list[str]:
        """The absolute href of every element `selector` matches on the current page."""
        found = self.send(
            "Runtime.evaluate",
            session=True,
            expression=f"JSON.stringify([...document.querySelectorAll({json.dumps(selector)})]"
            ".map(a => a.href))",
            returnByValue=True,
        )
        hrefs: list[str] = json.loads(found["result"]["value"])
        return hrefs
