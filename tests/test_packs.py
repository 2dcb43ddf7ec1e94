"""Packs in-process: runs evolved together over shared models are the same runs as alone; one
failing run leaves the others; a pack run again skips what finished; bounded large populations;
how a sweep is split into packs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from pipeline_cli import MECHANICS_CLIP, ROOT, composed_specs, histories, run_cli, runs_of

from hydra_plugins.latentevo_launcher.packed_launcher import plan_packs
from hydra_plugins.latentevo_launcher.slurm_launcher import PackTask
from latentevo.errors import LatentevoError
from latentevo.models.shapes import ShapesGenerator
from latentevo.pipeline import RunSpec, pack_key, run_pack
from latentevo.pipeline.measures import scene_labels

# pop 16, as in the thesis: the mini-CLIP gives the same embedding of an image in any batch of
# at least 16 images (smaller batches take another convolution kernel, up to 1.2e-7 apart)
SMALL = ["generations=8", "pop_size=16", "log_every=3", *MECHANICS_CLIP]
TESTS_DIR = str(Path(__file__).resolve().parent)


def specs_of(experiment: str, jobs: list[list[str]], common: list[str] = SMALL) -> list[RunSpec]:
    return composed_specs(experiment, jobs, common)


def by_name(uri: str, experiment: str) -> dict:
    client, runs = runs_of(uri, experiment)
    return {run.info.run_name: run for run in runs}


def same_runs(uri: str, packed: str, alone: str) -> None:
    """Every run of `packed` has the metric history, params, tags and artifacts of its namesake
    in `alone`."""
    client, _ = runs_of(uri, packed)
    a, b = by_name(uri, packed), by_name(uri, alone)
    assert sorted(a) == sorted(b)
    for name, run in a.items():
        other = b[name]
        assert run.info.status == other.info.status == "FINISHED"
        assert histories(client, run.info.run_id) == histories(client, other.info.run_id), name
        assert {k: v for k, v in run.data.params.items() if k != "experiment_name"} == \
            {k: v for k, v in other.data.params.items() if k != "experiment_name"}
        assert run.data.tags.keys() == other.data.tags.keys()
        paths = [sorted(f.path for f in client.list_artifacts(r.info.run_id, "population")) for r in (run, other)]
        assert paths[0] == paths[1] and paths[0]
        final = [np.load(client.download_artifacts(r.info.run_id, "population.npz")) for r in (run, other)]
        assert all(np.array_equal(final[0][k], final[1][k]) for k in ("latents", "cos_sim", "best_latent"))


MIXED = [[f"algo={algo}", f"prompt='{prompt}'"] for algo in ("ga", "de", "cmaes")
         for prompt in ("a red circle", "a blue star on a yellow background")]


def test_a_packed_mixed_sweep_is_the_same_runs_as_alone(tracking):
    packed = run_pack(specs_of("mixed_packed", MIXED))
    assert [o.status for o in packed] == ["FINISHED"] * 6
    for spec in specs_of("mixed_alone", MIXED):
        assert run_pack([spec])[0].status == "FINISHED"
    same_runs(tracking, "mixed_packed", "mixed_alone")
    client, runs = runs_of(tracking, "mixed_packed")
    finals = {r.info.run_name: r.data.metrics["best_cos_sim"] for r in runs}
    assert len(set(finals.values())) == 6  # six different searches, not one run six times


def test_each_run_draws_its_own_augmented_views(tracking):
    jobs = [["seed=0"], ["seed=1"]]
    common = [*SMALL, "augment=crops", "augment.views=2"]
    assert [o.status for o in run_pack(specs_of("views_packed", jobs, common))] == ["FINISHED"] * 2
    for spec in specs_of("views_alone", jobs, common):
        run_pack([spec])
    same_runs(tracking, "views_packed", "views_alone")


def test_one_failing_run_leaves_the_rest_of_the_pack_to_finish(tracking, monkeypatch):
    monkeypatch.syspath_prepend(TESTS_DIR)
    jobs = [["prompt='a red circle'"], ["prompt='a poison star'"],
            ["prompt='a green ring'", "evaluation=shapes_shape", "evaluation.target=ring",
             "evaluation.classifier._target_=faulty_generators.missing_classifier"],
            ["prompt='a blue square'"]]
    common = [*SMALL, "clip._target_=faulty_generators.PoisonedPrompts", "~clip.random_init"]
    outcomes = run_pack(specs_of("one_fails", jobs, common))
    assert [o.status for o in outcomes] == ["FINISHED", "FAILED", "FAILED", "FINISHED"]
    assert "NaN" in str(outcomes[1].error) and "missing weights" in str(outcomes[2].error)
    runs = by_name(tracking, "one_fails")
    client, _ = runs_of(tracking, "one_fails")
    assert runs[jobs[1][0]].info.status == "FAILED"
    assert jobs[2][0] not in runs  # its classifier was missing before its search started
    for name in (jobs[0][0], jobs[3][0]):
        assert [s for s, _ in histories(client, runs[name].info.run_id)["best_cos_sim"]] == list(range(8))


def test_a_pack_run_again_skips_its_finished_runs(tracking, capsys):
    jobs = [["seed=0"], ["seed=1"]]
    first = run_pack(specs_of("again", jobs))
    again = run_pack(specs_of("again", jobs))
    assert [o.status for o in again] == ["SKIPPED"] * 2
    assert [o.run_id for o in again] == [o.run_id for o in first]
    assert [o.best_cos_sim for o in again] == [o.best_cos_sim for o in first]
    assert len(runs_of(tracking, "again")[1]) == 2
    assert capsys.readouterr().out.count("already FINISHED") == 2


@pytest.mark.slow  # 30,000 images; the bounded parts are tested fast in test_population_memory.py
def test_large_populations_run_in_bounded_memory(tracking):
    [outcome] = run_pack(specs_of("large", [["pop_size=10000", "generations=2", "log_every=1"]], MECHANICS_CLIP))
    assert outcome.status == "FINISHED", outcome.error
    client, runs = runs_of(tracking, "large")
    assert client.get_metric_history(runs[0].info.run_id, "n_evals")[-1].value == 20000


def test_packs_sent_through_submitit_without_slurm_are_the_same_runs_as_alone(tracking, tmp_path):
    result = run_cli(["-m", "algo=ga,de", *SMALL, "experiment_name=submitit_local", "hydra/launcher=submitit_local"],
                     tracking, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "submitted 1 pack to local as job" in result.stdout and "pack 1/1 (job" in result.stdout
    swept = by_name(tracking, "submitit_local")
    for spec in specs_of("submitit_alone", [["algo=ga"], ["algo=de"]]):
        # named as the sweep names its runs, with the config group choices Hydra gave them
        spec.name = ",".join(sorted([*spec.overrides, *SMALL]))
        spec.choices = {k.removeprefix("choice."): v for k, v in swept[spec.name].data.params.items()
                        if k.startswith("choice.")}
        assert run_pack([spec])[0].status == "FINISHED"
    same_runs(tracking, "submitit_local", "submitit_alone")


def test_packs_group_jobs_by_their_models_and_fill_every_worker():
    assert plan_packs(["a"] * 100, pack_size=100, workers=2) == [list(range(0, 100, 2)), list(range(1, 100, 2))]
    assert plan_packs(["a"] * 5, pack_size=2, workers=1) == [[0, 3], [1, 4], [2]]
    assert plan_packs(["a", "b", "a", "b"], pack_size=100, workers=2) == [[0, 2], [1, 3]]
    assert plan_packs(["a", "b", "a"], pack_size=100, workers=8) == [[0], [2], [1]]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        key = [pack_key(compose("config", overrides=o)) for o in
               (["seed=1", "algo=de", "prompt=x", "augment=crops"], ["seed=2", "augment=crops"],
                ["generator=dcgan_shapes"])]
    assert key[0] == key[1] != key[2]  # the views' seed is the run's, the generator the pack's


def test_a_sweeps_launching_process_composes_and_groups_its_jobs_without_the_model_libraries():
    # its packs run in worker processes, which load these while it composes the jobs' configs
    code = ("import sys, run; from latentevo import callbacks; from latentevo.pipeline import pack_key; "
            "from hydra_plugins.latentevo_launcher.packed_launcher import default_workers; "
            "from omegaconf import OmegaConf; default_workers(OmegaConf.create({'device': 'auto'})); "
            "print(sorted({'torch', 'pymoo', 'open_clip', 'latentevo.pipeline.pack'} & set(sys.modules)))")
    found = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_a_cluster_pack_whose_node_does_not_see_the_shared_checkpoints_fails_with_one_line(tmp_path):
    with pytest.raises(LatentevoError, match=r"checkpoint directory .*/unmounted is missing on node .*: checkpoints "
                                             r"must live on a disk every node reads"):
        PackTask()(1, 1, [], None, None, {}, [str(tmp_path / "unmounted")])


MIXED_TARGETS = [["prompt='a red circle'"], ["prompt='a red star | a blue background:0.5 | -a red background'"],
                 ["prompt=null", "image_prompt='scene:shape=star,colour=red,background=blue'"],
                 ["prompt='a yellow cross'", "image_prompt='scene:shape=cross,colour=yellow,background=black'",
                  "image_prompt_weight=0.5"]]


def test_runs_with_plain_algebra_and_image_prompts_packed_are_the_same_runs_as_alone(tracking):
    packed = run_pack(specs_of("targets_packed", MIXED_TARGETS))
    assert [o.status for o in packed] == ["FINISHED"] * 4
    for spec in specs_of("targets_alone", MIXED_TARGETS):
        assert run_pack([spec])[0].status == "FINISHED"
    same_runs(tracking, "targets_packed", "targets_alone")
    client, runs = runs_of(tracking, "targets_packed")
    terms = {r.info.run_name: sorted(k for k in r.data.metrics if k.startswith("term")) for r in runs}
    assert [len(terms[",".join(job)]) for job in MIXED_TARGETS] == [0, 3, 1, 2]  # a plain prompt logs no terms


@pytest.fixture
def one_thread():
    """Torch on one thread, as runs are (threads=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_packs_ground_truth_labels_each_latent_as_its_run_alone_would(one_thread):
    # the pack labels every run's best + population in one call; on one thread the scene map's
    # matmul gives the same rows in any batch of at least 5 latents (pop >= 4), at any offset
    generator = ShapesGenerator()
    latents = generator.sample_latents(50 * 17, torch.Generator().manual_seed(0)).double().numpy()
    packed = scene_labels(generator, latents)
    for run in range(50):
        alone = scene_labels(generator, latents[17 * run : 17 * (run + 1)])
        assert all(torch.equal(alone[a], packed[a][17 * run : 17 * (run + 1)]) for a in alone)
    coords = torch.from_numpy(latents).float() @ generator.mixing
    for size in (5, 17, 33):
        assert torch.equal(torch.cat([part @ generator.mixing for part in torch.from_numpy(latents).float()
                                      .split(size)]), coords), size
