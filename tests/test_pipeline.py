"""End to end through `python run.py` with a temporary MLflow store."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from pipeline_cli import MECHANICS_CLIP, ROOT, run_cli, runs_of

METRICS = ["best_cos_sim", "mean_cos_sim", "std_cos_sim", "diversity", "n_evals", "truth_match", "pop_truth_match",
           "colour_leak", "pop_colour_leak"]


@pytest.fixture(scope="module")
def sweep_2x2(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    args = ["-m", "algo=ga,de", "seed=0,1", "generations=12", "log_every=5", "experiment_name=e2e",
            "hydra.launcher.workers=2", *MECHANICS_CLIP]
    return run_cli(args, store, out)


def test_sweep_finishes_and_says_where_each_result_is(store, sweep_2x2):
    assert sweep_2x2.returncode == 0, sweep_2x2.stderr[-2000:]
    _, runs = runs_of(store, "e2e")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4
    assert len({r.info.run_name for r in runs}) == 4
    finals = [line for line in sweep_2x2.stdout.splitlines() if "best cos_sim" in line]
    assert sorted(line.split()[1] for line in finals) == ["1/4", "2/4", "3/4", "4/4"]
    for run in runs:
        assert any(run.info.run_id in line for line in finals)
    # the sweep ran as packs (one per core), each with its progress bar
    assert "Launching 4 jobs in 2 packs" in sweep_2x2.stdout
    assert "pack 1/2 (2 runs)" in sweep_2x2.stderr and "pack 2/2 (2 runs)" in sweep_2x2.stderr
    assert "finished 2/2 | best cos_sim" in sweep_2x2.stderr


def test_each_run_has_contiguous_generations_and_mean_below_best(store, sweep_2x2):
    client, runs = runs_of(store, "e2e")
    for run in runs:
        history = {k: client.get_metric_history(run.info.run_id, k) for k in METRICS}
        for key, points in history.items():
            assert sorted(p.step for p in points) == list(range(12)), key
        best = {p.step: p.value for p in history["best_cos_sim"]}
        mean = {p.step: p.value for p in history["mean_cos_sim"]}
        assert all(mean[s] <= best[s] + 1e-9 for s in range(12))
        assert all(0 <= p.value <= 1 for p in history["truth_match"])
        assert all(p.value in (0, 1) for p in history["colour_leak"])
        evals = sorted(history["n_evals"], key=lambda p: p.step)
        assert evals[0].value == 16 and evals[-1].value > evals[0].value


def test_each_run_has_its_artifacts(store, sweep_2x2):
    client, runs = runs_of(store, "e2e")
    for run in runs:
        run_id = run.info.run_id
        grids = {a.path for a in client.list_artifacts(run_id, "population")}
        assert grids == {f"population/gen_{g:04d}.png" for g in (0, 5, 10, 11)}
        top = {a.path for a in client.list_artifacts(run_id)}
        assert top == {"population", "images", "best.png", "best.gif", "population.gif", "population.npz",
                       "config.yaml"}
        local = client.download_artifacts(run_id, "population.npz")
        arrays = np.load(local)
        assert arrays["latents"].shape == (16, 32) and arrays["cos_sim"].shape == (16,)
        assert float(arrays["best_cos_sim"]) == pytest.approx(run.data.metrics["best_cos_sim"])
        config = yaml.safe_load(open(client.download_artifacts(run_id, "config.yaml")))
        assert config["seed"] == int(run.data.params["seed"])


def test_each_run_records_config_and_provenance(store, sweep_2x2):
    _, runs = runs_of(store, "e2e")
    for run in runs:
        params, tags = run.data.params, run.data.tags
        assert params["prompt"] == "a red circle"
        assert params["pop_size"] == "16" and params["generations"] == "12"
        assert params["choice.algo"] in ("ga", "de")
        assert params["algo._target_"].endswith({"ga": "GA", "de": "DE"}[params["choice.algo"]])
        assert params["algo.pop_size"] == "16"
        assert params["generator._target_"] == "latentevo.models.shapes.ShapesGenerator"
        assert len(tags["git_sha"]) == 40 and tags["git_dirty"] in ("true", "false")
        assert f"algo={params['choice.algo']}" in tags["hydra_overrides"]
        assert tags["version.torch"] and tags["version.pymoo"] == "0.6.2"
        assert tags["device"] == "cpu"
        name = run.info.run_name.split(",")
        assert f"algo={params['choice.algo']}" in name and f"seed={params['seed']}" in name


def test_same_seed_same_metric_history(store, tmp_path):
    # resume=false: the second seed=5 job would otherwise be skipped as already FINISHED
    args = ["-m", "hydra/launcher=local", "seed=5,5,6", "algo=de", "generations=8", "experiment_name=repro",
            "resume=false", *MECHANICS_CLIP]
    result = run_cli(args, store, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    client, runs = runs_of(store, "repro")
    histories = {}
    for run in runs:
        points = client.get_metric_history(run.info.run_id, "mean_cos_sim")
        histories.setdefault(run.data.params["seed"], []).append(
            [(p.step, p.value) for p in sorted(points, key=lambda p: p.step)])
    first, second = histories["5"]
    assert first == second
    assert histories["6"][0] != first


def test_other_generators_algorithms_and_augmented_scoring(store, tmp_path):
    """The DCGAN (random weights here), CMA-ES and random search, with augmented views."""
    args = [
        "-m", "hydra/launcher=local", "algo=cmaes,random", "generator=dcgan_shapes", "generator.random_init=true",
        "augment=crops", "augment.views=2", "generations=4", "pop_size=6", "experiment_name=others", *MECHANICS_CLIP,
    ]
    result = run_cli(args, store, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    client, runs = runs_of(store, "others")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 2
    for run in runs:
        assert "truth_match" not in run.data.metrics  # no ground truth for a GAN
        assert run.data.params["augment.views"] == "2"
        assert run.data.params["choice.generator"] == "dcgan_shapes"


@pytest.mark.process
def test_ctrl_c_marks_the_run_killed(store, tmp_path):
    out = tmp_path
    args = [sys.executable, "run.py", "generations=100000", "experiment_name=interrupted", *MECHANICS_CLIP,
            f"hydra.run.dir={out}/run"]
    # PYTHONFAULTHANDLER: a SIGABRT makes the run print every thread's stack, should it not stop.
    # A test suite started in the background (`make test &`) ignores SIGINT, and so would the run:
    # it gets the default back, as if started from a terminal.
    proc = subprocess.Popen(args, cwd=ROOT, env=os.environ | {"MLFLOW_TRACKING_URI": store, "PYTHONFAULTHANDLER": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, runs = runs_of(store, "interrupted")
            if runs and "best_cos_sim" in runs[0].data.metrics:
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, stderr = proc.communicate(timeout=30)
            pytest.fail(f"still running 60 s after SIGINT; its stacks:\n{stderr[-6000:]}")
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    _, runs = runs_of(store, "interrupted")
    assert [r.info.status for r in runs] == ["KILLED"]
