"""A real MLflow tracking server (`make mlflow-server` on a free loopback port): a sweep runs into
it, re-runs skip what finished, a killed run resumes, and a server that goes away loses nothing."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from faulty_generators import DELAY_ENV
from pipeline_cli import MECHANICS_CLIP, error_lines, histories, run_cli, runs_of, start_cli
from servers import free_port, mlflow_server

from analysis.load import load_runs

TESTS_DIR = str(Path(__file__).resolve().parent)
SLOW = "generator._target_=faulty_generators.SlowShapes"
GENERATIONS = 12
# MLflow's client retries a lost server with backoff for minutes by default; a test waits less
SHORT_RETRY = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
# one server worker: a test has one client at a time, and each worker is a process importing MLflow
ONE_WORKER = {"MLFLOW_WORKERS": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory, new_store):
    store = tmp_path_factory.mktemp("server") / "store"
    store.mkdir()
    new_store(store)  # the server's database, its schema built already
    with mlflow_server(store, free_port(), **ONE_WORKER) as (uri, _):
        yield uri


def run_args(tmp_path: Path, experiment: str, *extra: str) -> list[str]:
    # a checkpoint every 2 generations: a run killed early has one to resume from
    return [SLOW, "pop_size=8", f"generations={GENERATIONS}", "log_every=5", "checkpoint_every=2",
            f"experiment_name={experiment}",
            f"paths.checkpoints={tmp_path / 'checkpoints'}", *MECHANICS_CLIP, *extra]


def env(delay: float = 0, **more: str) -> dict[str, str]:
    return {"PYTHONPATH": TESTS_DIR, DELAY_ENV: str(delay)} | more


def reference_history(uri: str, tmp_path: Path, experiment: str, *extra: str) -> dict:
    result = run_cli(run_args(tmp_path, experiment, *extra), uri, tmp_path / "reference", env=env())
    assert result.returncode == 0, result.stderr[-2000:]
    client, runs = runs_of(uri, experiment)
    return histories(client, runs[0].info.run_id)


def wait_for_step(uri: str, experiment: str, step: int, proc: subprocess.Popen, checkpoints: Path) -> int:
    """Waits until the run's metrics in the store reach `step` and it has written a checkpoint."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        client, runs = runs_of(uri, experiment)
        if runs and any(checkpoints.glob("*.ckpt")):
            reached = max((m.step for m in client.get_metric_history(runs[0].info.run_id, "best_cos_sim")), default=-1)
            if reached >= step:
                return reached
        time.sleep(0.3)
    raise AssertionError(f"the run did not reach generation {step}")


@pytest.mark.slow
def test_a_sweep_into_the_server_is_read_back_by_the_analysis_loader_and_not_run_twice(server, tmp_path):
    sweep = ["-m", "hydra/launcher=local", "algo=ga,de", "seed=0", *run_args(tmp_path, "team")]
    first = run_cli(sweep, server, tmp_path / "first", env=env())
    assert first.returncode == 0, first.stderr[-2000:]
    loaded = load_runs("team", uri=server, cache_dir=None)
    assert sorted(loaded.runs["algorithm"]) == ["de", "ga"]
    assert loaded.history.groupby("algorithm")["generation"].apply(list).to_dict() == {
        "de": list(range(GENERATIONS)), "ga": list(range(GENERATIONS))}

    again = run_cli(sweep, server, tmp_path / "again", env=env())
    assert again.returncode == 0, again.stderr[-2000:]
    assert sum("skipped" in line for line in again.stdout.splitlines()) == 2
    assert len(runs_of(server, "team")[1]) == 2


@pytest.mark.process
def test_kill_9_and_the_same_command_resumes_on_the_server(server, tmp_path):
    args = run_args(tmp_path, "team_killed", "algo=de")
    # a second a generation: the run sends metrics 2 s in and every 3 s after, so the store shows
    # early generations for seconds before the last one, however loaded the machine
    proc = start_cli(args, server, tmp_path / "killed", env=env(delay=1.0))
    try:
        reached = wait_for_step(server, "team_killed", 1, proc, tmp_path / "checkpoints" / "team_killed")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert reached < GENERATIONS - 1
    result = run_cli(args, server, tmp_path / "resumed", env=env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming MLflow run" in result.stdout
    client, runs = runs_of(server, "team_killed")
    assert [r.info.status for r in runs] == ["FINISHED"]
    assert histories(client, runs[0].info.run_id) == reference_history(server, tmp_path, "team_killed_ref", "algo=de")


def test_server_down_at_start_is_one_line_and_creates_nothing(tmp_path):
    result = run_cli(run_args(tmp_path, "nobody"), f"http://127.0.0.1:{free_port()}", tmp_path / "out", env=env())
    assert result.returncode == 1
    assert len(error_lines(result.stderr)) == 1 and "cannot reach MLflow tracking server" in result.stderr
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.process
def test_a_server_lost_mid_run_keeps_the_metrics_and_the_rerun_sends_them(server, tmp_path):
    """The run's own server goes away (SIGKILL) mid-run: the run stops after a bounded retry,
    keeping unsent metrics in its checkpoint; with the server back, the same command finishes it."""
    port = free_port()
    args = run_args(tmp_path, "lost", "algo=ga")
    with mlflow_server(tmp_path / "store", port, **ONE_WORKER) as (uri, server_proc):
        proc = start_cli(args, uri, tmp_path / "run", env=env(delay=0.5, **SHORT_RETRY))
        try:
            wait_for_step(uri, "lost", 1, proc, tmp_path / "checkpoints" / "lost")
            os.killpg(server_proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate(timeout=240)
        finally:
            proc.kill()
    assert proc.returncode == 1
    assert len(error_lines(stderr)) == 1 and "lost the MLflow tracking store" in stderr, stderr[-2000:]
    assert list((tmp_path / "checkpoints" / "lost").glob("*.ckpt"))

    with mlflow_server(tmp_path / "store", port, **ONE_WORKER) as (uri, _):
        result = run_cli(args, uri, tmp_path / "resumed", env=env())
        assert result.returncode == 0, result.stderr[-2000:]
        client, runs = runs_of(uri, "lost")
        assert [r.info.status for r in runs] == ["FINISHED"]
        resumed = histories(client, runs[0].info.run_id)
    assert resumed == reference_history(server, tmp_path, "lost_ref", "algo=ga")
