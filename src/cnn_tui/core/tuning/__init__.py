"""Tuning: plan and run a search (strategies, trials, executors, Dask), the scikeras classifier, the fit pool."""
