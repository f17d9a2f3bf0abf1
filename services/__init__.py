"""motcua-monitor services: one package per process (ingest, metrics, api) plus shared plumbing."""
