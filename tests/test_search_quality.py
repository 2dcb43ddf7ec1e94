"""What the search finds with the TRAINED mini-CLIP. These need the shapes-world weights
(`make world`); without them they fail with the missing-weights error, by design: the quality
of the pipeline's results is not testable with an untrained scorer."""

import pytest

from latentevo.tracking import open_experiment
from pipeline_cli import run_cli, runs_of

pytestmark = pytest.mark.trained_weights
SEEDS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def red_circle_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    uri = f"sqlite:///{out / 'mlflow.db'}"
    open_experiment("red_circle", uri)
    seeds = ",".join(map(str, SEEDS))
    args = ["-m", "hydra/launcher=local", "prompt=a red circle", "algo=ga", f"seed={seeds}", "generations=100", "experiment_name=red_circle"]
    result = run_cli(args, uri, out)
    assert result.returncode == 0, result.stderr[-2000:]
    client, runs = runs_of(uri, "red_circle")
    assert len(runs) == len(SEEDS)
    return client, runs


def test_ga_best_image_is_a_red_circle_in_most_seeds(red_circle_runs):
    _, runs = red_circle_runs
    hits = [r.data.metrics["truth_match"] == 1.0 for r in runs]
    assert sum(hits) >= 3, f"truth_match of the best image per seed: {[r.data.metrics['truth_match'] for r in runs]}"


def test_generation_zero_samples_mostly_are_not_red_circles(red_circle_runs):
    client, runs = red_circle_runs
    for run in runs:
        gen0 = [m for m in client.get_metric_history(run.info.run_id, "pop_truth_match") if m.step == 0]
        # random draws name the colour 1/8 and the shape 1/6 of the time: about 0.15
        assert gen0[0].value < 0.5
