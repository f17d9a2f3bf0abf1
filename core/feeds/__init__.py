"""Silent feeds (issue 18): per integrator (`source`) and agency, the volume a working day is
expected to bring, and an alert on motcua.alerts.<agency> and in /v1/alerts when a working day
passes far below it, or when a feed that sends daily manifests stops sending them.

- judge.py: which day is judged, the window read, and the judgements (pure);
- alerts.py: transitions from judgements and the alerts already open (pure);
- monitor.py: the reads, and publishing and storing transitions (FeedMonitor.step).
"""

from core.feeds.judge import FeedRule
from core.feeds.monitor import FeedMonitor, FeedRun

__all__ = ["FeedMonitor", "FeedRule", "FeedRun"]
