"""The `paths` config group (conf/paths/): one choice puts a job's tracking store, checkpoints,
trained networks and Hydra's folders where it says, for run.py, train.py and pixel_ga.py alike,
over $MLFLOW_TRACKING_URI; and `python -m analysis` reads the store the same choice names."""

import pytest
from gan_cli import compose_train
from hydra import compose, initialize_config_dir
from mlflow import MlflowClient
from pipeline_cli import MECHANICS_CLIP, ROOT, run_cli, run_module

from analysis.__main__ import main as analysis
from analysis.store import selected
from latentevo.errors import LatentevoError
from latentevo.paths import PROJECT_DIR
from latentevo.tracking import tracking_uri
from latentevo.training import jobs


def run_config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_a_paths_option_puts_the_store_and_every_folder_under_its_directory():
    cfg = run_config("paths=quick")
    assert tracking_uri(cfg.paths.store) == f"sqlite:///{PROJECT_DIR / '.cache/figures-quick/mlflow.db'}"
    assert cfg.hydra.sweep.dir.startswith(".cache/figures-quick/multirun/")
    assert cfg.hydra.run.dir.startswith(".cache/figures-quick/hydra/")
    train = compose_train(["paths=gan_quick", "model=dcgan"])
    assert train.save == ".cache/gan-quick/weights/dcgan_shapes.safetensors"
    assert tracking_uri(train.paths.store) == f"sqlite:///{PROJECT_DIR / '.cache/gan-quick/mlflow.db'}"


def test_the_default_store_is_the_environments_and_an_option_store_wins_over_it(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracker.example.org:5000")
    assert tracking_uri(run_config().paths.store) == "http://tracker.example.org:5000"
    assert tracking_uri(run_config("paths.store=http://other:5000").paths.store) == "http://other:5000"
    assert tracking_uri(run_config("paths=gan").paths.store).endswith("/.cache/gan/mlflow.db")


def test_paths_keys_are_typed():
    with pytest.raises(Exception, match="paths.cache"):
        run_config("paths.cache=null")
    with pytest.raises(Exception, match="nope"):
        run_config("paths.nope=1")


def test_a_run_with_paths_lands_in_that_store_though_the_environment_names_another(store, tmp_path):
    mine = tmp_path / "mine"
    args = ["generations=2", "pop_size=8", "log_every=2", "experiment_name=paths_store", f"paths.store={mine}",
            f"paths.checkpoints={tmp_path / 'ckpt'}", "checkpoint_every=1", *MECHANICS_CLIP]
    result = run_cli(args, store, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    client = MlflowClient(f"sqlite:///{mine / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("paths_store").experiment_id])
    assert run.info.status == "FINISHED"
    assert MlflowClient(store).get_experiment_by_name("paths_store") is None
    assert list((tmp_path / "ckpt").iterdir()) == [tmp_path / "ckpt" / "paths_store"]
    # the analysis finds it through the same choice
    assert selected(store=str(mine)).uri == f"sqlite:///{mine / 'mlflow.db'}"


def test_a_train_py_job_asks_the_store_of_its_paths_whether_it_is_done(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    cfg = compose_train(["model=dcgan", f"paths.store={tmp_path / 'gan'}"])
    assert jobs.finished_run(cfg) is None
    assert (tmp_path / "gan" / "mlflow.db").is_file()


@pytest.mark.parametrize("argv, message", [
    (["nope"], "invalid choice: 'nope'"),
    (["figures", "--experiments", "nope"], "argument --experiments: invalid choice: 'nope'"),
    (["egan", "--bogus"], "unrecognized arguments: --bogus"),
    ([], "the following arguments are required"),
])
def test_python_m_analysis_refuses_a_bad_command_line_with_one_usage_error(argv, message):
    with pytest.raises(LatentevoError, match=message) as refused:
        analysis(argv)
    assert "\n" not in str(refused.value) and "--help" in str(refused.value)


def test_python_m_analysis_reports_a_bad_argument_in_one_line_and_exit_1():
    result = run_module("analysis", ["egan", "--paths", "nope"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: In 'config': Could not find 'paths/nope'; available: default, eval_quick, gan, gan_quick, "
        "paths_schema, quick"]
