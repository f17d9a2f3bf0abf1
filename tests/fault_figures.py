"""The fault suite's figures lines, printed at the end of the run by tests/conftest.py.

pytest captures print() while a test runs; the lines collected here go into the terminal summary,
so CI output always shows them, whether the tests passed or failed.
"""

from __future__ import annotations

LINES: list[str] = []


def report(line: str) -> None:
    print(line)
    LINES.append(line)
