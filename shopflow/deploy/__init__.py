"""Shopflow's local Airflow deployment: real background services and runs through them.

- :mod:`shopflow.deploy.env`: the embedded Airflow's configuration (one environment for
  every service and CLI call) and the admin login.
- :mod:`shopflow.deploy.services`: ``shopflow up`` / ``down`` / ``status``: api-server,
  scheduler, dag-processor and triggerer as supervised processes.
- :mod:`shopflow.deploy.api`: a small client of the REST API (``/api/v2``).
- :mod:`shopflow.deploy.runs`: ``shopflow run`` / ``retrain`` / ``backfill``: trigger (or
  join, or clear) the run of a business date through the scheduler and follow it.

Light on purpose: nothing here imports Airflow; it drives Airflow as processes and over HTTP.
"""
