"""One job identity (latentevo.identity) for run.py, train.py, pixel_ga.py and the analysis: what
is and is not part of it, the weights' contents, and run.py and `make figures --run-missing`
agreeing on which jobs of a sweep are done. In-process, on a temporary store."""

import pytest
from hydra import compose, initialize_config_dir
from mlflow.entities import Param, RunTag
from pipeline_cli import MECHANICS_CLIP, ROOT

from analysis.load import run_table
from analysis.sweeps import missing_jobs
from latentevo.identity import IDENTITY_TAG, job_identity
from latentevo.pipeline import RunSpec, run_pack
from latentevo.tracking import open_experiment
from latentevo.training import jobs

SMALL = ["generations=2", "pop_size=8", "log_every=2", *MECHANICS_CLIP]


def identity_of(*overrides: str) -> str:
    """The identity of the job `run.py OVERRIDES` runs."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return job_identity(RunSpec.of(compose("config", overrides=list(overrides)), "job").cfg)


def gan_config(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf" / "gan"), version_base="1.3"):
        return compose(name, overrides=list(overrides))


@pytest.mark.parametrize("setting", ["threads=4", "threads=null", "device=cpu", "batch_size=8", "checkpoint_every=0",
                                     "paths.checkpoints=/tmp/elsewhere", "resume=false", "paths.weights=/tmp/elsewhere",
                                     "paths=quick", "paths=gan", "paths.store=/tmp/elsewhere"])
def test_how_a_run_py_job_runs_is_not_part_of_its_identity(setting):
    assert identity_of(setting) == identity_of()


@pytest.mark.parametrize("setting", ["augment=crops", "algo.mutation.eta=5", "algo.crossover.prob=0.5", "pop_size=20",
                                     "algo=de", "seed=1", "prompt='a blue star'", "generations=3", "log_every=5",
                                     "generator.entangle=false", "clip.random_init=true"])
def test_every_setting_of_what_a_run_py_job_computes_is_part_of_its_identity(setting):
    assert identity_of(setting) != identity_of()


def test_augmentation_settings_are_part_of_the_identity():
    assert identity_of("augment=crops", "augment.views=4") != identity_of("augment=crops")
    assert identity_of("augment=crops", "augment.seed=7") != identity_of("augment=crops")


def test_a_weight_files_contents_are_the_identity_not_its_directory(tmp_path):
    """BigGAN's weights in two directories: the same bytes are the same job, other bytes another."""
    first, second = tmp_path / "a", tmp_path / "b"
    for directory, content in ((first, b"weights one"), (second, b"weights one")):
        directory.mkdir()
        (directory / "biggan-deep-128-pytorch_model.bin").write_bytes(content)
    job = ["generator=biggan_deep_128", "generator.class_name=church"]
    assert identity_of(*job, f"paths.weights={first}") == identity_of(*job, f"paths.weights={second}")
    (second / "biggan-deep-128-pytorch_model.bin").write_bytes(b"weights two, retrained")
    assert identity_of(*job, f"paths.weights={first}") != identity_of(*job, f"paths.weights={second}")
    missing = identity_of(*job, f"paths.weights={tmp_path / 'none'}")
    assert missing not in {identity_of(*job, f"paths.weights={d}") for d in (first, second)}


def test_a_trained_generators_new_weights_are_a_new_job(tmp_path):
    path = tmp_path / "g.safetensors"
    path.write_bytes(b"first")
    path.with_suffix(".json").write_text("{}")
    job = ["generator=trained_gan", f"generator.path={path}"]
    before = identity_of(*job)
    path.write_bytes(b"second training")
    assert identity_of(*job) != before


def test_train_py_identity_leaves_out_threads_but_not_the_models_settings():
    base = jobs.job_identity(gan_config("train", "model=dcgan"))
    assert jobs.job_identity(gan_config("train", "model=dcgan", "threads=4")) == base
    assert jobs.job_identity(gan_config("train", "model=dcgan", "skip_finished=false")) == base
    assert jobs.job_identity(gan_config("train", "model=dcgan", "model.batch_size=64")) != base
    assert jobs.job_identity(gan_config("train", "model=dcgan", "instance_noise=0.1")) != base


@pytest.mark.parametrize("paths", ["paths=gan_quick", "paths.store=/tmp/elsewhere", "paths.trained=/tmp/elsewhere"])
def test_where_a_train_py_job_keeps_its_files_is_not_part_of_its_identity(paths):
    assert jobs.job_identity(gan_config("train", paths)) == jobs.job_identity(gan_config("train"))


def test_where_pixel_ga_finds_its_realness_network_is_not_part_of_its_identity_its_contents_are(tmp_path):
    for directory in ("a", "b"):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "realness_shapes.safetensors").write_bytes(b"one network")
        (tmp_path / directory / "realness_shapes.json").write_text("{}")
    a, b = (jobs.job_identity(gan_config("pixel_ga", f"paths.trained={tmp_path / d}")) for d in ("a", "b"))
    assert a == b
    assert jobs.job_identity(gan_config("pixel_ga", f"paths.trained={tmp_path / 'a'}", "paths=gan_quick",
                                        "paths.store=/tmp/elsewhere")) == a
    (tmp_path / "b" / "realness_shapes.safetensors").write_bytes(b"another network")
    assert jobs.job_identity(gan_config("pixel_ga", f"paths.trained={tmp_path / 'b'}")) != a


def test_pixel_ga_identity_hashes_its_realness_network(tmp_path):
    path = tmp_path / "realness.safetensors"
    path.write_bytes(b"first")
    path.with_suffix(".json").write_text("{}")
    cfg = gan_config("pixel_ga", f"realness={path}")
    before = jobs.job_identity(cfg)
    assert jobs.job_identity(gan_config("pixel_ga", f"realness={path}", "threads=3")) == before
    path.write_bytes(b"second, and longer")
    assert jobs.job_identity(cfg) != before


# --- run.py and the analysis agree ------------------------------------------------------------

SETTINGS = [*SMALL, "experiment_name=identity_sweep"]
SWEEP = ["algo=ga", *SETTINGS]


def specs(*jobs_: list[str]) -> list[RunSpec]:
    """The jobs as `run.py -m experiment=ga_vs_de` composes them."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return [RunSpec.of(compose("config", overrides=["experiment=ga_vs_de", *SWEEP, *job]), ",".join(job), job)
                for job in jobs_]


def test_run_py_and_the_run_missing_planner_agree_on_which_jobs_are_done(tracking):
    [first] = run_pack(specs(["seed=0"]))
    assert first.status == "FINISHED"
    # the planner: seed 1 is missing, and so is every job that differs in an augmentation or
    # algorithm setting, although its six old identity params are those of the finished run
    assert missing_jobs("ga_vs_de", ["seed=0,1", *SWEEP], uri=tracking) == [["algo=ga", "seed=1", *SETTINGS]]
    for setting in ("augment=crops", "algo.mutation.eta=5"):
        assert len(missing_jobs("ga_vs_de", ["seed=0,1", *SWEEP, setting], uri=tracking)) == 2, setting
    assert missing_jobs("ga_vs_de", ["seed=0", *SWEEP, "threads=2", "batch_size=16"], uri=tracking) == []
    # run.py: the same sweep skips seed 0 and runs seed 1; a changed algorithm setting runs anew
    again = run_pack(specs(["seed=0"], ["seed=1"], ["seed=0", "algo.mutation.eta=5"]))
    assert [o.status for o in again] == ["SKIPPED", "FINISHED", "FINISHED"]
    assert again[0].run_id == first.run_id
    assert missing_jobs("ga_vs_de", ["seed=0,1", *SWEEP], uri=tracking) == []
    assert missing_jobs("ga_vs_de", ["seed=0", *SWEEP, "algo.mutation.eta=5"], uri=tracking) == []


def test_the_run_table_counts_each_job_once_and_jobs_with_equal_params_apart(store):
    client, experiment_id = open_experiment("identity_table", store)

    def finished(job: str) -> str:
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(run_id, params=[Param("choice.algo", "ga"), Param("seed", "0")],
                         tags=[RunTag(IDENTITY_TAG, job)])
        client.set_terminated(run_id, "FINISHED")
        return run_id

    finished("crops")
    latest_crops, plain = finished("crops"), finished("none")
    table = run_table(client.search_runs([experiment_id]))
    assert sorted(table["run_id"]) == sorted([latest_crops, plain])
