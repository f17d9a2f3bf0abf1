"""The library every process and tool imports: figures, plans, feeds, reference data, the ingest
path, NATS, storage (ARCHITECTURE.md has the layers)."""
