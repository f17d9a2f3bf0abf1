"""Credentials a start created and has not printed yet, kept until one start prints them.

The first `motcua up` generates the example integrator's password and the first admin API key,
and stores only their hashes: printed once, they cannot be printed again. A start that stops
before its banner (killed, a bad plan file, a crash) would lose them. So each is written here the
moment it is created, in <data dir>/credentials-not-shown.txt (mode 0600, beside the NATS
services' own passwords in nats/credentials.json), and the file is removed once the banner and
the credentials are printed: the next start that gets that far prints what an earlier one could
not.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.private import write_private

FILE = "credentials-not-shown.txt"

log = logging.getLogger("motcua")


class Unshown:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE
        try:
            # what earlier starts created and could not print
            self.earlier = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.earlier = ""
        except OSError as exc:
            log.warning("cannot read the credentials an earlier start kept: %s", exc)
            self.earlier = ""
        self.created: list[str] = []

    def keep(self, text: str) -> None:
        """Record credentials just created, before anything else can fail."""
        self.created.append(text)
        try:
            write_private(self.path, self.earlier + "".join(f"{t}\n" for t in self.created))
        except OSError as exc:  # not kept: they are still printed if this start gets that far
            log.warning("cannot keep the new credentials in %s until shown: %s", self.path, exc)

    def text(self) -> str:
        """What to print after the banner: earlier starts' credentials first, then this one's."""
        parts = []
        if self.earlier:
            parts.append(
                "Thông tin đăng nhập do lần khởi động trước tạo ra nhưng chưa kịp hiện "
                "(lần đó dừng trước khi chạy xong):\n" + self.earlier.rstrip("\n")
            )
        parts += self.created
        return "\n".join(parts)

    def shown(self) -> None:
        """The credentials are printed: nothing of them stays on disk in clear."""
        self.path.unlink(missing_ok=True)
        self.earlier, self.created = "", []
