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


def _command(args: list[str], uri: str, out: Path, env: dict[str, str] | None) -> tuple[list[str], dict[str, str]]:
    outputs = [f"hydra.run.dir={out}/run", f"hydra.sweep.dir={out}/sweep"]
    multirun = [a for a in args if a == "-m"]
    rest = [a for a in args if a != "-m"]
    environ = os.environ | {"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"} | (env or {})
    return [sys.executable, "run.py", *multirun, *rest, *outputs], environ


def run_cli(args: list[str], uri: str, out: Path, env: dict[str, str] | None = None, **kwargs):
    """`python run.py ARGS` with its outputs under `out`, tracking into `uri`."""
    command, environ = _command(args, uri, out, env)
    return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600, **kwargs)


def start_cli(args: list[str], uri: str, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`run_cli` in the background, for tests that signal or kill it."""
    command, environ = _command(args, uri, out, env)
    return subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def histories(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric of the run as sorted (step, value) points."""
    keys = client.get_run(run_id).data.metrics
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in keys}


def runs_of(uri: str, experiment_name: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return client, []
    return client, client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=1000)


def last_step(uri: str, experiment: str) -> int:
    """The highest generation the experiment's running runs have logged, -1 before any."""
    client, runs = runs_of(uri, experiment)
    running = [r.info.run_id for r in runs if r.info.status == "RUNNING"]
    return max((m.step for i in running for m in client.get_metric_history(i, "best_cos_sim")), default=-1)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]
