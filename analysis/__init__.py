"""Thesis figures and statistics from the MLflow store: `python -m analysis figures|eval|egan|facegen`."""
