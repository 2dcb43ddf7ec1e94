"""Checkpoint and resume through the real CLI, with real signals: kill -9 mid-run and run the
same command again; SIGTERM; a sweep run again skips what finished and resumes what did not."""

import signal
import time
from pathlib import Path

import pytest
from faulty_generators import DELAY_ENV
from hydra import compose, initialize_config_dir
from pipeline_cli import MECHANICS_CLIP, ROOT, histories, last_step, run_cli, runs_of, start_cli

from latentevo.pipeline import RunSpec, run_pack

GENERATIONS = 20
SLOW = "generator._target_=faulty_generators.SlowShapes"
ARGS = [SLOW, "pop_size=8", f"generations={GENERATIONS}", "log_every=5", *MECHANICS_CLIP]
TESTS_DIR = str(Path(__file__).resolve().parent)
FAST = {"PYTHONPATH": TESTS_DIR, DELAY_ENV: "0"}
# half a second a generation: a run sends metrics every 3 s, so a killer polling the store sees
# generations well before the last one even on a loaded machine
SLOWED = {"PYTHONPATH": TESTS_DIR, DELAY_ENV: "0.5"}


def interrupt_mid_run(args, uri, out, experiment, how=signal.SIGKILL, after_step=4):
    """Starts a slowed-down run and sends it `how` once it has logged `after_step` and written a
    checkpoint; returns the finished process and the generation it had reached."""
    proc = start_cli(args, uri, out, env=SLOWED)
    try:
        deadline = time.monotonic() + 180
        checkpoints = Path(uri.removeprefix("sqlite:///")).parent / "checkpoints" / experiment
        while time.monotonic() < deadline and proc.poll() is None:
            if last_step(uri, experiment) >= after_step and any(checkpoints.glob("*.ckpt")):
                break
            time.sleep(0.2)
        reached = last_step(uri, experiment)
        proc.send_signal(how)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc, reached


@pytest.fixture(scope="module")
def uninterrupted(store, tmp_path_factory):
    """The reference: the same config run without interruption (config identity includes the
    experiment name, so each test's experiment gets its own reference run)."""

    def reference(experiment: str, extra: list[str] = ()) -> dict:
        result = run_cli([*ARGS, *extra, f"experiment_name={experiment}"], store, tmp_path_factory.mktemp("ref"),
                         env=FAST)
        assert result.returncode == 0, result.stderr[-2000:]
        client, runs = runs_of(store, experiment)
        return histories(client, runs[0].info.run_id)

    return reference


@pytest.mark.process
def test_kill_9_then_same_command_resumes_the_same_run_with_identical_history(store, tmp_path, uninterrupted):
    args = [*ARGS, "algo=de", "experiment_name=killed"]
    checkpoints = Path(store.removeprefix("sqlite:///")).parent / "checkpoints" / "killed"
    proc, reached = interrupt_mid_run(args, store, tmp_path, "killed")
    assert proc.returncode == -signal.SIGKILL and 4 <= reached < GENERATIONS - 1
    client, runs = runs_of(store, "killed")
    assert [r.info.status for r in runs] == ["RUNNING"]  # nobody could mark it: that is kill -9
    run_id = runs[0].info.run_id

    # a changed config is another job: it neither resumes the interrupted run nor takes its checkpoint
    changed = run_cli([*args, "algo.CR=0.9"], store, tmp_path, env=FAST)
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert "resuming" not in changed.stdout
    _, runs = runs_of(store, "killed")
    assert sorted(r.info.status for r in runs) == ["FINISHED", "RUNNING"]
    assert len(list(checkpoints.glob("*.ckpt"))) == 1

    result = run_cli(args, store, tmp_path, env=FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming MLflow run {run_id}" in result.stdout
    client, after = runs_of(store, "killed")
    assert {r.info.run_id for r in after} == {r.info.run_id for r in runs}  # no new run
    assert {r.info.status for r in after} == {"FINISHED"}
    resumed = histories(client, run_id)
    for key, points in resumed.items():  # every generation exactly once
        assert [step for step, _ in points] == list(range(GENERATIONS)), key

    reference = uninterrupted("killed_reference", ["algo=de"])
    assert resumed == reference
    grids = {a.path for a in client.list_artifacts(run_id, "population")}
    assert grids == {f"population/gen_{g:04d}.png" for g in (0, 5, 10, 15, 19)}
    assert not any(checkpoints.glob("*.ckpt"))


PACKED = [SLOW, "pop_size=16", "generations=12", "log_every=4", "checkpoint_every=2", *MECHANICS_CLIP]
ALGOS = ("ga", "de", "cmaes")
PACK = ["-m", f"algo={','.join(ALGOS)}", "seed=0,1", "hydra.launcher.workers=1", *PACKED]


@pytest.mark.process
def test_kill_9_of_a_pack_then_the_same_sweep_resumes_each_of_its_runs(store, tmp_path, monkeypatch):
    """GA, DE and CMA-ES runs in one pack; pymoo's CMA-ES state cannot be pickled, so its
    checkpoint keeps the run and the generation, and its runs resume by replaying from the seed.
    Killed once the runs' first metrics are in the store (a pack sends its later ones seconds
    apart a run) and a checkpoint is written."""
    args = [*PACK, "experiment_name=pack_killed"]
    proc, reached = interrupt_mid_run(args, store, tmp_path, "pack_killed", after_step=1)
    assert proc.returncode == -signal.SIGKILL and 1 <= reached < 11
    client, runs = runs_of(store, "pack_killed")
    ids = sorted(r.info.run_id for r in runs)
    assert [r.info.status for r in runs] == ["RUNNING"] * 6

    result = run_cli(args, store, tmp_path, env=FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("resuming MLflow run") == 6
    assert result.stdout.count("replaying its generations from the seed") == 2  # the CMA-ES runs
    assert sorted(line.split()[1] for line in result.stdout.splitlines() if " best cos_sim " in line) == \
        [f"{i}/6" for i in range(1, 7)]
    assert "pack 1/1 (6 runs)" in result.stderr and "finished 6/6" in result.stderr
    client, runs = runs_of(store, "pack_killed")
    assert sorted(r.info.run_id for r in runs) == ids and {r.info.status for r in runs} == {"FINISHED"}
    resumed = {r.info.run_name: histories(client, r.info.run_id) for r in runs}
    for history in resumed.values():
        for key, points in history.items():  # every generation exactly once
            assert [step for step, _ in points] == list(range(12)), key

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv(DELAY_ENV, "0")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        jobs = [[f"algo={a}", f"seed={s}"] for a in ALGOS for s in (0, 1)]
        specs = [RunSpec.of(compose("config", overrides=[*PACKED, *job, "experiment_name=pack_reference"]),
                            ",".join(job))
                 for job in jobs]
    assert [o.status for o in run_pack(specs)] == ["FINISHED"] * 6
    client, runs = runs_of(store, "pack_reference")
    reference = {r.info.run_name: histories(client, r.info.run_id) for r in runs}
    for name, history in resumed.items():  # named by their overrides: algo=de,seed=1
        assert history == reference[
            ",".join(part for part in name.split(",") if part.split("=")[0] in ("algo", "seed"))]


@pytest.mark.process
def test_sigterm_marks_the_run_killed_and_the_rerun_finishes_it(store, tmp_path, uninterrupted):
    args = [*ARGS, "algo=ga", "experiment_name=terminated"]
    proc, _ = interrupt_mid_run(args, store, tmp_path, "terminated", how=signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM
    client, runs = runs_of(store, "terminated")
    assert [r.info.status for r in runs] == ["KILLED"]
    kept = histories(client, runs[0].info.run_id)["best_cos_sim"]
    assert len(kept) >= 5  # what it logged before the signal is kept

    result = run_cli(args, store, tmp_path, env=FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    client, runs = runs_of(store, "terminated")
    assert [r.info.status for r in runs] == ["FINISHED"]
    assert histories(client, runs[0].info.run_id) == uninterrupted("terminated_reference", ["algo=ga"])


@pytest.mark.slow
@pytest.mark.process
def test_sweep_rerun_skips_finished_jobs_resumes_interrupted_ones_and_runs_the_rest(store, tmp_path):
    common = [SLOW, "pop_size=8", "generations=12", *MECHANICS_CLIP, "experiment_name=sweep_resume"]
    first = run_cli(["-m", "algo=ga,de", "seed=0", *common], store, tmp_path / "first", env=FAST)  # parallel jobs
    assert first.returncode == 0, first.stderr[-2000:]
    _, before = runs_of(store, "sweep_resume")
    finished = {r.data.params["choice.algo"]: r.info.run_id for r in before}

    interrupt_mid_run(["algo=de", "seed=1", *common], store, tmp_path / "killed", "sweep_resume")
    _, runs = runs_of(store, "sweep_resume")
    interrupted = next(r.info.run_id for r in runs if r.info.status == "RUNNING")

    again = run_cli(["-m", "hydra/launcher=local", "algo=ga,de", "seed=0,1", *common], store, tmp_path / "again",
                    env=FAST)
    assert again.returncode == 0, again.stderr[-2000:]
    skipped = [line for line in again.stdout.splitlines() if "skipped" in line]
    assert len(skipped) == 2 and all(any(i in line for line in skipped) for i in finished.values())
    assert f"resuming MLflow run {interrupted}" in again.stdout
    client, runs = runs_of(store, "sweep_resume")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4
    for run in runs:
        assert [s for s, _ in histories(client, run.info.run_id)["best_cos_sim"]] == list(range(12))
