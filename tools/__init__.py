"""Tools that are not processes: Grafana as code (grafana/) and the traffic simulator
(simulator/)."""
