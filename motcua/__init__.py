"""The `motcua` command: its subcommands, `motcua up` (every process in one, embedded NATS and
chDB) and one service per process (processes.py)."""
