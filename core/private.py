"""Files and directories readable by this user only: stores and credentials hold every event,
refused raw bytes, key hashes and passwords."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) readable by this user only, and narrow it if it
    exists. The engines write their files 0644 inside; a 0700 directory keeps other users out of
    all of them."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def write_private(path: Path, text: str) -> None:
    """Write readable by this user only, and atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # the umask may have narrowed it, never widened
        f.write(text)
    os.replace(tmp, path)
