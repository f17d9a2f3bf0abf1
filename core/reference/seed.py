"""The Khánh Hòa sample reference data, loaded by `motcua up` into an empty store.

Published through NATS like `motcua catalog load` (core/ingestion/reference_loader.py
`seed_if_empty`, which reads this file), so seeded data takes the same path as any later
correction (stream → ingest → tables) and stays replayable from MOTCUA_REFERENCE.
"""

from __future__ import annotations

from pathlib import Path

SEED_FILE = Path(__file__).parent / "data" / "khanhhoa.json"
