"""A real one-node Slurm cluster (`make slurm-up`) and a real PostgreSQL-backed MLflow server
(`make mlflow-server BACKEND=postgresql`): sweeps sent through sbatch, and the faults a cluster
brings (a cancelled pack, Slurm's signal before a time limit, the server or the database
restarted mid-sweep, many runs logging at once, a partition Slurm does not know).

Run as root on a machine with Debian's slurm-wlm, slurmdbd, munge, mariadb-server and postgresql
(`make test-cluster`; CI installs them)."""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy
from faulty_generators import DELAY_ENV
from pipeline_cli import MECHANICS_CLIP, ROOT, error_lines, histories, run_cli, runs_of, start_cli
from servers import free_port, mlflow_server

from latentevo.tracking import open_experiment, tracked_run

pytestmark = pytest.mark.cluster

TESTS_DIR = str(Path(__file__).resolve().parent)
SLOW = "generator._target_=faulty_generators.SlowShapes"
# one CPU per pack, so that the node (2 CPUs) runs two packs at once
SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"]
GENERATIONS = 16
# a second a generation for the runs interrupted mid-sweep: a run sends metrics 2 s in and every
# 3 s after, so the store shows generation 5 or 6 for seconds before the run ends, however loaded
# the machine (at 0.3 s a generation, a run could end between two of the poller's looks)
INTERRUPTED_DELAY = 1.0


@pytest.fixture(scope="session")
def slurm():
    result = subprocess.run(["make", "-s", "slurm-up"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def postgres_dirs():
    """Server directories the postgres user can reach (pytest's own are private to root)."""
    parent = Path(tempfile.mkdtemp(prefix="latentevo-cluster-"))
    parent.chmod(0o755)
    made = []

    def make(name: str) -> tuple[Path, int]:
        made.append((parent / name, free_port()))
        return made[-1]

    yield make
    for directory, port in made:
        subprocess.run(["cluster/postgres.sh", "down", str(directory / "postgres"), str(port)], cwd=ROOT, timeout=60)
    shutil.rmtree(parent, ignore_errors=True)


@contextlib.contextmanager
def pg_server(directory: Path, pg_port: int, port: int | None = None):
    with mlflow_server(directory, port or free_port(), BACKEND="postgresql", PG_PORT=pg_port) as (uri, proc):
        yield uri, proc


@pytest.fixture(scope="module")
def server(slurm, postgres_dirs):
    directory, pg_port = postgres_dirs("shared")
    with pg_server(directory, pg_port) as (uri, _):
        yield uri, directory, pg_port


def database(directory: Path, pg_port: int) -> sqlalchemy.Engine:
    uri = subprocess.run(["cluster/postgres.sh", "uri", str(directory / "postgres"), str(pg_port)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    return sqlalchemy.create_engine(uri)


def sweep_args(tmp_path: Path, experiment: str, *extra: str) -> list[str]:
    (tmp_path / "checkpoints").mkdir(exist_ok=True)  # the shared directory, there before the sweep
    return ["-m", "algo=ga,de", "seed=0", "pop_size=16", f"generations={GENERATIONS}", "checkpoint_every=4",
            f"experiment_name={experiment}", f"paths.checkpoints={tmp_path / 'checkpoints'}", *MECHANICS_CLIP, *extra]


def env(delay: float = 0) -> dict[str, str]:
    return {"PYTHONPATH": TESTS_DIR, DELAY_ENV: str(delay)}


def reference(uri: str, tmp_path: Path, experiment: str) -> dict[str, dict]:
    """The same two jobs, uninterrupted, in one local pack."""
    (tmp_path / "ref_checkpoints").mkdir()
    args = [a for a in sweep_args(tmp_path, experiment + "_ref", SLOW) if not a.startswith("paths.checkpoints=")]
    result = run_cli([*args, f"paths.checkpoints={tmp_path / 'ref_checkpoints'}", "hydra.launcher.workers=1"], uri,
                     tmp_path / "ref", env=env())
    assert result.returncode == 0, result.stderr[-2000:]
    return all_histories(uri, experiment + "_ref")


def all_histories(uri: str, experiment: str) -> dict[str, dict]:
    client, runs = runs_of(uri, experiment)
    return {r.info.run_name: histories(client, r.info.run_id) for r in runs}


def in_order(found: dict[str, dict]) -> list[dict]:
    """The histories by run name (algo=de,... before algo=ga,...); names differ in paths.checkpoints."""
    return [found[name] for name in sorted(found)]


def statuses(uri: str, experiment: str) -> list[str]:
    return sorted(r.info.status for r in runs_of(uri, experiment)[1])


def wait_for_step(uri: str, experiment: str, step: int, proc: subprocess.Popen, timeout: float = 240) -> int:
    """The highest generation any run of the experiment has in the store, once it is >= step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        client, runs = runs_of(uri, experiment)
        reached = max((m.step for r in runs for m in client.get_metric_history(r.info.run_id, "best_cos_sim")),
                      default=-1)
        if reached >= step:
            return reached
        time.sleep(0.5)
    raise AssertionError(f"no run reached generation {step}")


def running_job() -> str:
    """The id of the one job Slurm is running now."""
    ids = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert len(ids) == 1, ids
    return ids[0]


def assert_contiguous(found: dict[str, dict]) -> None:
    for name, metrics in found.items():
        for key, points in metrics.items():
            steps = [step for step, _ in points]
            assert steps == sorted(set(steps)) and steps == list(range(steps[0], steps[0] + len(steps))), (name, key)


def test_a_4_job_sweep_through_sbatch_ends_with_4_finished_runs_in_postgresql_and_is_not_sent_again(server, tmp_path):
    uri, directory, pg_port = server
    args = ["-m", "algo=ga,de", "seed=range(2)", "pop_size=8", "generations=4", "experiment_name=cluster_sweep",
            *MECHANICS_CLIP, *SLURM]
    first = run_cli(args, uri, tmp_path / "first", env=env())
    assert first.returncode == 0, first.stderr[-2000:]
    assert "submitted 1 pack to slurm as job" in first.stdout
    assert statuses(uri, "cluster_sweep") == ["FINISHED"] * 4
    assert all(points["best_cos_sim"][-1][0] == 3 for points in all_histories(uri, "cluster_sweep").values())
    with database(directory, pg_port).connect() as db:  # the runs are rows of the PostgreSQL store
        finished = db.execute(sqlalchemy.text(
            "select count(*) from runs join experiments using (experiment_id) "
            "where experiments.name = 'cluster_sweep' and runs.status = 'FINISHED'")).scalar()
    assert finished == 4

    again = run_cli(args, uri, tmp_path / "again", env=env())
    assert again.returncode == 0, again.stderr[-2000:]
    assert sum(" skipped " in line for line in again.stdout.splitlines()) == 4
    assert "submitted" not in again.stdout
    assert len(runs_of(uri, "cluster_sweep")[1]) == 4


def test_wait_false_returns_once_the_packs_are_submitted_and_they_run_on(server, tmp_path):
    uri = server[0]
    args = ["-m", "seed=range(2)", "pop_size=8", "generations=6", "experiment_name=no_wait", *MECHANICS_CLIP, *SLURM,
            "hydra.launcher.wait=false", "hydra.launcher.pack_size=1"]
    result = run_cli(args, uri, tmp_path / "out", env=env())
    assert result.returncode == 0, result.stderr[-2000:]
    submitted = result.stdout.split("submitted 2 packs to slurm as jobs ", 1)[1].split(";")[0].split(", ")
    assert len(submitted) == 2 and "ended" not in result.stdout
    deadline = time.monotonic() + 240
    while subprocess.run(["squeue", "-h", "-j", ",".join(submitted)], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, "the packs did not end"
        time.sleep(1)
    assert statuses(uri, "no_wait") == ["FINISHED", "FINISHED"]


def test_scancel_of_a_running_pack_then_the_same_command_finishes_every_run_as_uninterrupted(server, tmp_path):
    uri = server[0]
    args = sweep_args(tmp_path, "cancelled", SLOW, *SLURM)
    proc = start_cli(args, uri, tmp_path / "cancelled", env=env(delay=INTERRUPTED_DELAY))
    try:
        wait_for_step(uri, "cancelled", 6, proc)
        subprocess.run(["scancel", running_job()], check=True)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1
    lines = error_lines(stderr)
    assert lines and "ended CANCELLED" in lines[-1] and "run the same command again" in lines[-1], stderr[-2000:]
    assert "RUNNING" not in statuses(uri, "cancelled")

    again = run_cli(args, uri, tmp_path / "again", env=env())
    assert again.returncode == 0, again.stderr[-2000:]
    assert statuses(uri, "cancelled") == ["FINISHED", "FINISHED"]
    found = all_histories(uri, "cancelled")
    assert_contiguous(found)
    assert in_order(found) == in_order(reference(uri, tmp_path, "cancelled"))


def test_slurms_signal_before_the_time_limit_checkpoints_the_pack_and_it_goes_on_after_the_requeue(server, tmp_path):
    uri = server[0]
    args = sweep_args(tmp_path, "requeued", SLOW, *SLURM)
    proc = start_cli(args, uri, tmp_path / "requeued", env=env(delay=INTERRUPTED_DELAY))
    try:
        signalled_at = wait_for_step(uri, "requeued", 5, proc)
        job = running_job()
        # what Slurm sends signal_delay_s before the time limit (and on a preemption)
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
        deadline = time.monotonic() + 60
        while "PENDING" not in subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                                               text=True).stdout:
            assert time.monotonic() < deadline, "the pack was not requeued"
            time.sleep(0.5)
        # Slurm holds a requeued job for two minutes; the test does not wait for that
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    restarts = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True).stdout
    assert "Restarts=1" in restarts
    log = "".join(p.read_text() for p in (tmp_path / "requeued").rglob("*_log.*"))
    resumed = [int(k) for k in re.findall(r"resuming MLflow run .* after generation (\d+)", log)]
    # checkpointed when signalled, not at the last periodic checkpoint (every 4 generations)
    assert len(resumed) == 2 and min(resumed) >= signalled_at, log[-3000:]
    assert statuses(uri, "requeued") == ["FINISHED", "FINISHED"]
    found = all_histories(uri, "requeued")
    assert_contiguous(found)
    assert in_order(found) == in_order(reference(uri, tmp_path, "requeued"))


def test_the_tracking_server_killed_and_restarted_mid_sweep_loses_nothing(slurm, postgres_dirs, server, tmp_path):
    directory, pg_port = postgres_dirs("killed")
    port = free_port()
    args = sweep_args(tmp_path, "server_killed", SLOW, *SLURM)
    with pg_server(directory, pg_port, port) as (uri, first):
        proc = start_cli(args, uri, tmp_path / "run", env=env(delay=INTERRUPTED_DELAY))
        wait_for_step(uri, "server_killed", 5, proc)
        os.killpg(first.pid, signal.SIGKILL)
    try:
        with pg_server(directory, pg_port, port) as (uri, _):  # back on the same port and database
            _, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr[-2000:]
            assert statuses(uri, "server_killed") == ["FINISHED", "FINISHED"]
            found = all_histories(uri, "server_killed")
    finally:
        proc.kill()
    assert_contiguous(found)
    assert in_order(found) == in_order(reference(server[0], tmp_path, "server_killed"))


def test_postgresql_restarted_mid_sweep_loses_nothing(server, tmp_path):
    uri, directory, pg_port = server
    args = sweep_args(tmp_path, "db_restarted", SLOW, *SLURM)
    proc = start_cli(args, uri, tmp_path / "run", env=env(delay=INTERRUPTED_DELAY))
    try:
        wait_for_step(uri, "db_restarted", 5, proc)
        subprocess.run(["cluster/postgres.sh", "restart", str(directory / "postgres"), str(pg_port)], cwd=ROOT,
                       check=True, timeout=120)
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    assert statuses(uri, "db_restarted") == ["FINISHED", "FINISHED"]
    found = all_histories(uri, "db_restarted")
    assert_contiguous(found)
    assert in_order(found) == in_order(reference(uri, tmp_path, "db_restarted"))


def test_32_runs_logging_every_generation_at_once_lose_no_step(server):
    uri = server[0]
    client, experiment_id = open_experiment("load", uri)
    runs, steps, errors = 32, 25, []

    def one_run(i: int) -> None:
        try:
            with tracked_run(client, experiment_id, f"load_{i}") as run:
                run.flush_every_s = 0  # a batch every generation
                for step in range(steps):
                    run.log_metrics(step, {"best_cos_sim": i + step / steps, "mean_cos_sim": step, "diversity": i})
        except Exception as err:  # noqa: BLE001 -- the test reports every thread's error
            errors.append(err)

    threads = [threading.Thread(target=one_run, args=(i,)) for i in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors[:3]
    found = all_histories(uri, "load")
    assert len(found) == runs and statuses(uri, "load") == ["FINISHED"] * runs
    for name, metrics in found.items():
        assert sorted(metrics) == ["best_cos_sim", "diversity", "mean_cos_sim"]
        assert all([s for s, _ in points] == list(range(steps)) for points in metrics.values()), name


def test_a_partition_slurm_does_not_know_is_one_line_and_starts_no_run(server, tmp_path):
    uri = server[0]
    result = run_cli(["-m", "seed=range(2)", "generations=2", "experiment_name=no_partition", *MECHANICS_CLIP, *SLURM,
                      "hydra.launcher.partition=nosuch"], uri, tmp_path / "out", env=env())
    assert result.returncode == 1
    lines = error_lines(result.stderr)
    assert (len(lines) == 1 and "slurm refused the sweep's 1 packs" in lines[0]
            and "partition" in lines[0]), result.stderr
    assert "Traceback" not in result.stderr
    assert runs_of(uri, "no_partition")[1] == []
