"""The event contract between the province's one-stop systems and motcua-monitor."""
