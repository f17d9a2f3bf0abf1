"""The three processes of motcua-monitor, one package each with one shape: ingest, metrics, api
(main.py the entry point, settings.py, the loop or the app). Their work lives in core/."""
