"""Shopflow's models: demand forecasting, recommendations, baselines, evaluation, registry.

Modules import numpy/pandas/xgboost at module level; import them inside task callables only,
never from DAG files.
"""
