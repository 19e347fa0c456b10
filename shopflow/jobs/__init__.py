"""Jobs: the nightly steps, retraining, rollback and backtests, composed of the two layers
below them.

Dependencies point one way: ``ml`` (pure model code: frames in, frames and models out) and
the platform (every other ``shopflow`` module: settings, landing, ingest, warehouse, dbt,
quality, publish, the registry's storage) never import this package; the DAG files and the
CLI call only this package (the DAGs only :mod:`shopflow.jobs.steps`) and the platform.
``tests/test_import_contract.py`` checks it.
"""
