"""Helpers for tests that drive the real `python run.py` CLI against a temporary MLflow store.

`run_cli` runs the script in this process (as `python run.py` would, with its own argv,
environment and working directory, its output captured and its exit status returned), which
saves the interpreter's start-up and imports on each call; `run_cli(..., process=True)` and
`start_cli` start a real process, for what only a process shows (signals, kill -9, the exit
status the shell sees)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import runpy
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from joblib.externals.loky import reusable_executor
from mlflow import MlflowClient
from mlflow.entities import ViewType

from latentevo.models.weights import WORLD_DIR
from latentevo.pipeline import RunSpec

ROOT = Path(__file__).resolve().parents[1]
TRAINED_CLIP = (WORLD_DIR / "clip.safetensors").is_file()
# Pipeline mechanics do not depend on what the scorer learned: until the trained mini-CLIP
# exists they run with the same architecture randomly initialised.
MECHANICS_CLIP = [] if TRAINED_CLIP else ["clip.random_init=true"]


def _command(script: str, args: list[str], uri: str, out: Path,
             env: dict[str, str] | None) -> tuple[list[str], dict[str, str]]:
    outputs = [f"hydra.run.dir={out}/run", f"hydra.sweep.dir={out}/sweep"]
    multirun = [a for a in args if a == "-m"]
    rest = [a for a in args if a != "-m"]
    environ = os.environ | {"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"} | (env or {})
    return [sys.executable, script, *multirun, *rest, *outputs], environ


def _stop_reused_workers() -> None:
    """joblib's loky workers outlive the call that started them, with the environment (tracking
    store, faults) they started with: stop them, as the end of a process does."""
    executor = reusable_executor._executor
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


@contextlib.contextmanager
def _process_state(argv: list[str], environ: dict[str, str]):
    """argv, environment and working directory as a new process has them; afterwards this
    process's back, with what a run changes in it (SIGTERM handler, torch threads, global random
    states, root logger)."""
    root = logging.getLogger()
    saved = (sys.argv, dict(os.environ), os.getcwd(), signal.getsignal(signal.SIGTERM), torch.get_num_threads(),
             random.getstate(), np.random.get_state(), torch.get_rng_state(), root.level, root.handlers[:])
    sys.argv = [os.fsdecode(arg) for arg in argv]  # bytes as Python decodes a process's argv
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(ROOT)
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        _stop_reused_workers()
        GlobalHydra.instance().clear()
        sys.argv = saved[0]
        os.environ.clear()
        os.environ.update(saved[1])
        os.chdir(saved[2])
        signal.signal(signal.SIGTERM, saved[3])
        torch.set_num_threads(saved[4])
        random.setstate(saved[5])
        np.random.set_state(saved[6])
        torch.set_rng_state(saved[7])
        root.setLevel(saved[8])
        root.handlers[:] = saved[9]


def _exit_status(code: object, err: io.StringIO) -> int:
    """What the interpreter makes of `SystemExit(code)`."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=err)
    return 1


@contextlib.contextmanager
def _descriptors_captured():
    """File descriptors 1 and 2 into temporary files, for what the call's child processes (a
    sweep's pack workers) write; yields a function that reads both."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)

        def read() -> tuple[str, str]:
            out.seek(0)
            err.seek(0)
            return out.read(), err.read()

        try:
            yield read
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def invoke(command: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess:
    """`command` (python SCRIPT ARGS, or python -m MODULE ARGS) run in this process, with the
    script or module as `__main__`."""
    module = command[2] if command[1] == "-m" else None
    argv = [module, *command[3:]] if module else command[1:]
    out, err = io.StringIO(), io.StringIO()
    with _descriptors_captured() as children:
        with _process_state(argv, environ), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if module:
                    with warnings.catch_warnings():  # a module the tests imported already, as a process has not
                        warnings.filterwarnings("ignore", "'.*' found in sys.modules", RuntimeWarning)
                        runpy.run_module(module, run_name="__main__", alter_sys=True)
                else:
                    runpy.run_path(str(ROOT / command[1]), run_name="__main__")
                status = 0
            except SystemExit as stop:
                status = _exit_status(stop.code, err)
            except Exception:  # as the interpreter reports an uncaught exception
                traceback.print_exc()
                status = 1
        child_out, child_err = children()  # the workers have ended with the call
    return subprocess.CompletedProcess(command, status, out.getvalue() + child_out, err.getvalue() + child_err)


def run_script(script: str, args: list[str], uri: str, out: Path, env: dict[str, str] | None = None,
               process: bool = False) -> subprocess.CompletedProcess:
    """`python SCRIPT ARGS` with its outputs under `out`, tracking into `uri`: in this process, or
    with `process` in a new one."""
    command, environ = _command(script, args, uri, out, env)
    if process:
        return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600)
    return invoke(command, environ)


def run_module(module: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` in this process."""
    return invoke([sys.executable, "-m", module, *args], os.environ | (env or {}))


def composed_specs(experiment: str, jobs: list[list[str]], common: list[str]) -> list[RunSpec]:
    """The runs of `jobs` (override lists, each over `common`) as the launcher composes them, in
    experiment `experiment`; each named by its overrides."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return [RunSpec.of(compose("config", overrides=[*common, *job, f"experiment_name={experiment}"]),
                           ",".join(job), job)
                for job in jobs]


def run_cli(args: list[str], uri: str, out: Path, env: dict[str, str] | None = None, process: bool = False):
    """`python run.py ARGS` with its outputs under `out`, tracking into `uri`."""
    return run_script("run.py", args, uri, out, env, process)


def start_cli(args: list[str], uri: str, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python run.py ARGS` in the background, for tests that signal or kill it."""
    command, environ = _command("run.py", args, uri, out, env)
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
