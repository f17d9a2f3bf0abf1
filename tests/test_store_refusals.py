"""A write the store refuses halfway: the ingest's second attempt stores and folds everything.

ClickHouse records a block's hash in a table's dedup log before it renames the block's part into
place. When the rename fails (the store refused writes at that very moment) the part is gone and
the hash stays: the same insert retried with the same token is dropped as already stored. This
is what tests/test_faults.py (clickhouse_unwritable) hit now and then, depending on when the
directory froze; here the moment is chosen: a watcher freezes one table's directory (and the
write probe's, so the writer sees an outage, not a refused row) the instant that table's new
part appears, and thaws it after the insert failed.

chDB opens one data directory per process, so each case runs in a child process on its own
store (this file run as a script).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOSSIERS = 6_000


def test_events_part_lost_at_rename(tmp_path: Path) -> None:
    # Catches: the raw table's part lost at its rename, its hash kept, and the retry with the
    # same token dropped as a duplicate: events acked but never stored.
    _child("events", tmp_path)


def test_state_part_lost_at_rename(tmp_path: Path) -> None:
    # Catches: the raw table written, the state view's part lost at its rename, and the retry
    # dropped for the view as already seen: events stored but never folded into any figure.
    _child("dossier_parts", tmp_path)


def test_dead_letters_part_lost_at_rename(tmp_path: Path) -> None:
    # Catches: the same for the dead letters (acked, so only the table keeps them).
    _child("dead_letters", tmp_path)


def test_reference_dead_letters_part_lost_at_rename(tmp_path: Path) -> None:
    # Catches: the same for the reference stream's dead letters (ReferenceWriter): the batch
    # naked, redelivered, and its dead letters dropped as already stored. (The reference tables
    # themselves keep no dedup window, so their inserts cannot be dropped this way.)
    _child("reference_dead_letters", tmp_path)


def _child(table: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, __file__, table, str(tmp_path / "store")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["caught"], "the watcher never froze the table while its part was written"
    assert outcome["events"] == outcome["sent_events"]
    assert outcome["folded"] == outcome["sent_events"]
    assert outcome["dead"] == outcome["sent_dead"]


# ---------------------------------------------------------------------------------------------
# The child: one store, one table frozen at the moment its part is renamed.


def _freeze(dirs: list[str], frozen: bool) -> None:
    """Freeze (or thaw) the directories in their order, in one go: the writer's probe must be
    frozen by the time the table's rename fails, or the probe succeeds and the writer takes the
    failure for a refused row. One chattr per directory left that window open for as long as a
    process takes to start, and a loaded CI run fell into it."""
    if os.geteuid() == 0:  # root ignores permission bits; the immutable attribute holds
        subprocess.run(["chattr", "+i" if frozen else "-i", *dirs], check=False)
        return
    for d in dirs:
        os.chmod(d, 0o555 if frozen else 0o755)


def _batch(n: int, dead_n: int, seq0: int) -> tuple[list[object], list[object]]:
    from core.ingestion.common import MessageMeta
    from core.ingestion.processor import EventRow, process
    from tests.helpers import received

    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    rows: list[object] = []
    dead: list[object] = []
    for i in range(n):
        event = received("REFUSE", f"R{seq0 + i}", at, due=at + timedelta(days=5))
        meta = MessageMeta("motcua.events.REFUSE.dossier.received", seq0 + i, at)
        rows.append(process(json.dumps(event).encode(), meta))
    for i in range(dead_n):
        meta = MessageMeta("motcua.events.REFUSE.dossier.received", seq0 + n + i, at)
        dead.append(process(b"{not json " + uuid.uuid4().bytes.hex().encode(), meta))
    assert all(isinstance(r, EventRow) for r in rows)
    return rows, dead


def _reference_dead(n: int, seq0: int) -> list[object]:
    """`n` reference messages the ingest refuses (not JSON)."""
    from core.ingestion.common import DeadLetter, MessageMeta
    from core.ingestion.reference import process_reference
    from schemas.subjects import reference_subject

    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    dead = [
        process_reference(
            b"{not json " + uuid.uuid4().hex.encode(),
            MessageMeta(reference_subject("agency", f"XA_{seq0 + i}"), seq0 + i, at),
        )
        for i in range(n)
    ]
    assert all(isinstance(d, DeadLetter) for d in dead)
    return list(dead)


def main(table: str, store: str) -> None:
    from core.ingestion.common import StoreUnavailable
    from core.ingestion.writer import EventWriter, ReferenceWriter
    from core.storage.clickhouse import connect
    from core.storage.migrate import migrate

    client = connect(f"chdb://{store}")
    migrate(client)

    def data_dir(name: str) -> str:
        path: str = client.query(
            "SELECT data_paths[1] FROM system.tables WHERE name = {n:String}",
            parameters={"n": name},
        ).result_rows[0][0]
        return path

    target = data_dir("dead_letters" if table == "reference_dead_letters" else table)
    frozen = [data_dir("store_write_probe"), target]  # the probe first: _freeze
    writer = EventWriter(client)
    reference = ReferenceWriter(client)
    sent_events = sent_dead = 0
    caught = False
    # a dead letter is small: many of them, so that their part takes a while to write too
    dead_n = DOSSIERS if table == "dead_letters" else DOSSIERS // 10
    for attempt in range(10):  # the watcher may miss a part written faster than it looks
        if table == "reference_dead_letters":
            rows, dead = [], _reference_dead(DOSSIERS, attempt * DOSSIERS)
        else:
            rows, dead = _batch(DOSSIERS, dead_n, attempt * 10 * DOSSIERS)
        sent_events += len(rows)
        sent_dead += len(dead)
        seen = threading.Event()
        stop = threading.Event()

        def watch(seen: threading.Event = seen, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                if any(n.startswith("tmp_insert") for n in os.listdir(target)):
                    _freeze(frozen, True)
                    seen.set()
                    return
                time.sleep(0.0002)

        watcher = threading.Thread(target=watch)
        watcher.start()
        failed = False
        try:
            if table == "reference_dead_letters":
                reference.write([], dead)  # type: ignore[arg-type]
            else:
                writer.write(rows, dead)  # type: ignore[arg-type]
        except StoreUnavailable:
            failed = True
        finally:
            stop.set()
            watcher.join()
            _freeze(frozen, False)
        if failed:
            caught = seen.is_set()
            if table == "reference_dead_letters":  # naked, redelivered: the same again
                reference.write([], dead)  # type: ignore[arg-type]
            else:
                writer.write_again(rows, dead, set())  # type: ignore[arg-type]
            if caught:
                break
    if table == "agencies":  # records, not events: nothing to fold
        events = folded = client.query("SELECT count() FROM agencies FINAL").result_rows[0][0]
    else:
        events = client.query("SELECT count() FROM events FINAL").result_rows[0][0]
        folded = client.query("SELECT uniqExactMerge(event_count) FROM dossier_parts").result_rows[
            0
        ][0]
    dead_n = client.query("SELECT count() FROM dead_letters FINAL").result_rows[0][0]
    print(
        json.dumps(
            {
                "table": table,
                "caught": caught,
                "attempts": attempt + 1,
                "sent_events": sent_events,
                "sent_dead": sent_dead,
                "events": events,
                "folded": folded,
                "dead": dead_n,
            }
        )
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1], sys.argv[2])
