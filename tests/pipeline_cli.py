"""Helpers for tests that drive the real `python run.py` CLI against a temporary MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import ViewType

from latentevo.models.weights import WORLD_DIR

ROOT = Path(__file__).resolve().parents[1]
TRAINED_CLIP = (WORLD_DIR / "clip.safetensors").is_file()
# Pipeline mechanics do not depend on what the scorer learned: until the trained mini-CLIP
# exists they run with the same architecture randomly initialised.
MECHANICS_CLIP = [] if TRAINED_CLIP else ["clip.random_init=true"]


def run_cli(args: list[str], uri: str, out: Path, env: dict[str, str] | None = None, **kwargs):
    """`python run.py ARGS` with its outputs under `out`, tracking into `uri`."""
    outputs = [f"hydra.run.dir={out}/run", f"hydra.sweep.dir={out}/sweep"]
    multirun = [a for a in args if a == "-m"]
    rest = [a for a in args if a != "-m"]
    environ = os.environ | {"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"} | (env or {})
    return subprocess.run(
        [sys.executable, "run.py", *multirun, *rest, *outputs],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600, **kwargs,
    )


def runs_of(uri: str, experiment_name: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return client, []
    return client, client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=1000)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]
