"""Thesis figures and statistics from the MLflow store: `python -m analysis.make_figures`."""
