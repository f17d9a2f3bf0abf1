"""The plans in force, re-read when a plan file in the plans directory changes.

The provincial office adds next year's plan, or a corrected version of this one, by dropping a
YAML file into $MOTCUA_PLANS_DIR: the metrics service (at its next evaluation) and the API (within
a few seconds) take it without a restart. A file that fails validation changes nothing: the plans
stay as they were, and the error (file:line: message) is logged and shown in GET /v1/pipeline
until the file is fixed. At start-up a bad file still stops the start, as before.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from core.plans.checks import Reference
from core.plans.loader import is_plan_file, load_plans, plans_directory
from core.plans.model import Plan

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...] | None


def _fingerprint(directory: Path | None) -> Fingerprint:
    """(name, mtime, size) of every plan file: any edit, addition or removal changes it."""
    if directory is None:
        return ()
    try:
        return tuple(
            sorted(
                (entry.name, st.st_mtime_ns, st.st_size)
                for entry in os.scandir(directory)
                if is_plan_file(entry.name) and (st := entry.stat())
            )
        )
    except OSError:
        return None  # gone or unreadable: load_plans says why


class PlanSource(Mapping[str, Plan]):
    """A live mapping "id@version" → Plan; `refresh()` re-reads the directory if it changed."""

    def __init__(
        self,
        extra_dir: Path | None = None,
        *,
        check_every: float = 2.0,
        reference: Reference | None = None,
        packaged: bool = True,
    ) -> None:
        self._dir = plans_directory(extra_dir)
        self._check_every = check_every
        self._lock = threading.Lock()
        self._fingerprint = _fingerprint(self._dir)
        self._load = functools.partial(
            load_plans, self._dir, reference=reference, packaged=packaged
        )
        self._plans: dict[str, Plan] = self._load()
        self._checked = time.monotonic()
        self.error: str | None = None
        self.loaded_at = datetime.now(UTC)

    def __getitem__(self, key: str) -> Plan:
        return self._plans[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plans)

    def __len__(self) -> int:
        return len(self._plans)

    def refresh(self, *, force: bool = True) -> bool:
        """Re-read the plans if a file changed; True when the plans in force changed.

        `force=False` checks at most every `check_every` seconds (the API calls it per request).
        """
        if not force and time.monotonic() - self._checked < self._check_every:
            return False
        with self._lock:
            self._checked = time.monotonic()
            fingerprint = _fingerprint(self._dir)
            if fingerprint == self._fingerprint and fingerprint is not None:
                return False
            self._fingerprint = fingerprint
            try:
                plans = self._load()
            except (ValueError, OSError) as exc:  # PlanError is a ValueError
                if str(exc) != self.error:
                    log.warning("plan files changed but are not valid; plans unchanged: %s", exc)
                self.error = str(exc)
                return False
            self.error = None
            if plans == self._plans:
                return False
            added = sorted(plans.keys() - self._plans.keys())
            removed = sorted(self._plans.keys() - plans.keys())
            # One assignment: a reader sees the old plans or the new ones, never a mix.
            self._plans = plans
            self.loaded_at = datetime.now(UTC)
        log.info("plans reloaded: added %s, removed %s", added or "none", removed or "none")
        return True
