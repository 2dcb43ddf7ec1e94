"""Registers run.py's typed schema (`latentevo.schema`) when Hydra scans its plugins, so that
every way of composing conf/config.yaml (run.py, `hydra.compose` in tests and benchmarks) finds it."""

import latentevo.schema  # noqa: F401  (registers `run_schema` in Hydra's ConfigStore)
