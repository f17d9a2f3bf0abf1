"""Grafana as code: dashboards, alert rules and the datasource, generated from the project's own
definitions, exported as provisioning files (deploy/grafana/) and pushed by `motcua grafana sync`.
"""
