"""train.py and the models behind it (E-GAN, DCGAN, VAE, realness CNN), trained for a few
iterations on the shapes world; quality metrics; trained generators in run.py; bad input."""

import numpy as np
import pandas as pd
import pytest
import torch
from gan_cli import SMALL_GAN, compose_train, gan_runs, history, run_entry
from pipeline_cli import error_lines, run_cli, runs_of

from analysis.__main__ import main as analysis
from analysis.egan import final_quality
from latentevo.errors import ConfigError, WeightsError
from latentevo.models.classifier import shapes_classifier
from latentevo.models.trained import trained_generator
from latentevo.training import driver
from latentevo.training.data import DatasetError, ShapesSource, image_source
from latentevo.training.gan import EGANConfig, EGANTrainer, select
from latentevo.training.losses import MUTATIONS
from latentevo.training.quality import fd_classifier, fid, fid_inception_net

MUTATION_NAMES = list(MUTATIONS)


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory):
    """One short train.py run per model, each saving its network under `weights`."""
    out = tmp_path_factory.mktemp("train")
    weights = out / "weights"
    results = {}
    for model, extra in (("egan", SMALL_GAN), ("dcgan", SMALL_GAN), ("vae", SMALL_GAN[2:] + ["model.width=16"]),
                         ("realness", ["model.width=8"])):
        args = [f"model={model}", "model.iterations=3", "model.batch_size=8", *extra,
                f"save={weights}/{model}.safetensors"]
        results[model] = run_entry("train.py", args, store, out / model)
    return results, weights


def finished_run(store, model):
    client, runs = gan_runs(store)
    (run,) = [r for r in runs if r.data.params.get("model.name") == model and r.data.params.get("seed") == "0"]
    return client, run


@pytest.mark.parametrize("model", ["egan", "dcgan", "vae", "realness"])
def test_training_finishes_with_its_metrics_samples_and_weights(store, trained, model):
    results, weights = trained
    assert results[model].returncode == 0, results[model].stderr[-2000:]
    client, run = finished_run(store, model)
    assert run.info.status == "FINISHED"
    losses = {"egan": ["loss_d", "fitness_best", "mutation_won"] + [f"{k}_{m}" for m in MUTATION_NAMES for k in
                                                                     ("loss_g", "fitness", "quality", "diversity")],
              "dcgan": ["loss_d", "loss_g"], "vae": ["loss", "recon", "kl"], "realness": ["loss"]}[model]
    for key in losses + ["train_s"]:
        points = history(client, run.info.run_id, key)
        assert sorted(points) == [1, 2, 3], key
        assert all(np.isfinite(v) for v in points.values()), key
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert artifacts == {f"model/{model}.safetensors", f"model/{model}.json"}
    assert (weights / f"{model}.safetensors").is_file()
    if model != "realness":
        # quality at the first, every eval_every-th and the last iteration, and the real-vs-real floor
        assert sorted(history(client, run.info.run_id, "fd_classifier")) == [1, 2, 3]
        assert set(history(client, run.info.run_id, "fd_classifier_real")) == {0}
        assert "fd_classifier_n100" in run.data.metrics
        grids = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
        assert grids == {"samples/iter_000002.png", "samples/iter_000003.png"}


def test_a_trained_job_run_again_with_other_threads_is_skipped(store, trained, monkeypatch, capsys):
    """threads say how train.py runs, not what it trains: the same job, so nothing is trained."""
    results, weights = trained
    assert results["dcgan"].returncode == 0, results["dcgan"].stderr[-2000:]
    _, run = finished_run(store, "dcgan")
    runs_before = len(gan_runs(store)[1])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    args = ["model=dcgan", "model.iterations=3", "model.batch_size=8", *SMALL_GAN, f"save={weights}/dcgan.safetensors"]
    assert np.isnan(driver.train(compose_train([*args, "threads=2"])))
    assert f"skipped: MLflow run {run.info.run_id} trained this config" in capsys.readouterr().out
    assert len(gan_runs(store)[1]) == runs_before


def test_egan_logs_the_fittest_child_as_the_winner(store, trained):
    client, run = finished_run(store, "egan")
    fitness = {m: history(client, run.info.run_id, f"fitness_{m}") for m in MUTATION_NAMES}
    won = history(client, run.info.run_id, "mutation_won")
    best = history(client, run.info.run_id, "fitness_best")
    for step in (1, 2, 3):
        values = [fitness[m][step] for m in MUTATION_NAMES]
        assert MUTATION_NAMES[int(won[step])] == MUTATION_NAMES[int(np.argmax(values))]
        assert best[step] == pytest.approx(max(values))


def test_egan_selection_keeps_the_fittest_child():
    trainer = EGANTrainer(EGANConfig(iterations=5, batch_size=8, ngf=8, ndf=8, parents=1), ShapesSource(),
                          torch.Generator().manual_seed(0))
    made = []
    make = trainer.make_children
    trainer.make_children = lambda *a: made.extend(make(*a)) or made
    metrics = trainer.step()
    assert len(made) == len(MUTATION_NAMES)
    fittest = max(made, key=lambda c: c.fitness)
    assert len({c.fitness for c in made}) == len(made)  # distinct children, so the choice matters
    assert metrics["fitness_best"] == fittest.fitness
    kept = trainer.net_g.state_dict()
    assert all(torch.equal(kept[k], fittest.state[k]) for k in kept)
    for other in made:
        if other is not fittest:
            assert any(not torch.equal(kept[k], other.state[k]) for k in kept if kept[k].is_floating_point())
    assert [c.fitness for c in select(made, 2)] == sorted((c.fitness for c in made), reverse=True)[:2]


def test_every_mutation_pushes_the_generator_toward_fooling_the_discriminator():
    logits = torch.linspace(-3, 3, 7, requires_grad=True)
    for name, loss in MUTATIONS.items():
        (grad,) = torch.autograd.grad(loss(logits), logits)
        assert (grad < 0).all(), name  # lower loss <=> higher D(G(z))


def test_trained_generator_searches_in_run_py(store, trained, tmp_path):
    _, weights = trained
    for model in ("egan", "vae"):
        generator = trained_generator(str(weights / f"{model}.safetensors"))
        images = generator(generator.sample_latents(4))
        assert images.shape == (4, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    result = run_cli(["generator=trained_gan", f"generator.path={weights / 'egan.safetensors'}", "generations=2",
                      "experiment_name=trained_gan"], store, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "best cos_sim" in result.stdout


def test_missing_or_corrupt_generator_weights_are_one_line_errors(tmp_path):
    with pytest.raises(WeightsError, match="no trained network"):
        trained_generator(str(tmp_path / "none.safetensors"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    bad.with_suffix(".json").write_text('{"model": "dcgan", "architecture": {"nz": 100, "ngf": 64}}')
    with pytest.raises(WeightsError, match="corrupt") as err:
        trained_generator(str(bad))
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def renders():
    source, g = ShapesSource(), torch.Generator().manual_seed(0)
    return [(source.batch(400, g) + 1) / 2 for _ in range(2)]


def test_classifier_frechet_distance_is_near_zero_for_real_vs_real_and_large_for_noise(renders):
    classifier = shapes_classifier()
    a, b = renders
    noise = torch.rand_like(a)
    real_vs_real, real_vs_noise = fd_classifier(classifier, a, b), fd_classifier(classifier, a, noise)
    assert fd_classifier(classifier, a, a) == pytest.approx(0, abs=1e-3)
    assert real_vs_real < 0.05 * real_vs_noise


@pytest.mark.slow  # Inception at 299 px on a CPU: about half a minute
def test_fid_code_path_with_a_random_inception(renders):
    net = fid_inception_net(random_init=True)
    a, b = renders[0][:12], renders[1][:12]
    assert fid(net, a, b) < fid(net, a, torch.rand_like(a))


def test_missing_inception_weights_fail_fast(tmp_path):
    with pytest.raises(WeightsError, match="FID Inception") as err:
        fid_inception_net(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["cifar10", "celeba", "utkface"])
def test_real_data_sets_offline_are_one_line_errors(name, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTEVO_OFFLINE", "1")
    with pytest.raises(DatasetError, match=f"data set {name} not found under {tmp_path}") as err:
        image_source(name, str(tmp_path))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("args,message", [
    (["dataset=cifar10", "dataset.root={tmp}"], "data set cifar10 not found"),
    (["quality.inception=true", "quality.weights={tmp}"], "no weights for FID Inception"),
])
def test_bad_input_is_one_line_and_leaves_no_run_running(store, tmp_path, args, message):
    args = [a.format(tmp=tmp_path) for a in args] + ["model.ngf=8", "model.ndf=8", f"save={tmp_path}/g.safetensors",
                                                     "experiment_name=gan_bad"]
    result = run_entry("train.py", args, store, tmp_path, env={"LATENTEVO_OFFLINE": "1"})
    assert result.returncode == 1
    assert len(error_lines(result.stderr)) == 1 and message in error_lines(result.stderr)[0], result.stderr[-1500:]
    _, runs = runs_of(store, "gan_bad")
    assert all(r.info.status != "RUNNING" for r in runs)


@pytest.mark.parametrize("overrides,message", [
    (["model.mutations=[minimax,bogus]"], "unknown mutations"),
    (["model=vae", "model.iterations=0"], "model.iterations must be an integer >= 1"),
    (["eval_samples=-5"], "eval_samples must be an integer >= 1"),
])
def test_bad_settings_are_config_errors_before_any_run(overrides, message, tracking):
    with pytest.raises(ConfigError, match=message):
        driver.train(compose_train(
            [*overrides, "model.ngf=8", "model.ndf=8"] if "model=vae" not in overrides else overrides
        ))


def test_egan_summary_averages_seeds_and_gives_their_range():
    ours = pd.DataFrame({"model": ["DCGAN", "DCGAN", "E-GAN"], "fd_classifier final": [900.0, 1100.0, 1401.0]})
    assert final_quality(ours) == "DCGAN final 1000 (seeds 900–1100); E-GAN final 1401 (fd_classifier)"


def test_egan_and_facegen_analyses_table_every_model_and_seed(store, trained, tmp_path):
    results, weights = trained
    assert all(r.returncode == 0 for r in results.values())
    # a second DCGAN seed and a pixel GA run in the same store
    second = ["model=dcgan", "model.iterations=3", "model.batch_size=8", *SMALL_GAN, "seed=1",
              f"save={tmp_path}/dcgan1.safetensors"]
    assert run_entry("train.py", second, store, tmp_path / "dcgan1").returncode == 0
    ga = ["fitness=realness", f"realness={weights}/realness.safetensors", "generations=2", "pop_size=10", "elite=2",
          "eval_samples=64", "experiment_name=gan"]
    assert run_entry("pixel_ga.py", ga, store, tmp_path / "ga").returncode == 0

    analysis(["egan", "--store", store, "--out", str(tmp_path / "egan")])
    table = pd.read_csv(tmp_path / "egan" / "table.csv")
    assert sorted(zip(table["model"], table["seed"])) == [("DCGAN", 0), ("DCGAN", 1), ("E-GAN", 0)]
    assert set(table["iterations"]) == {3} and (table["fd_classifier final"] > 0).all()
    assert "DCGAN final" in (tmp_path / "egan" / "index.md").read_text()

    analysis(["facegen", "--store", store, "--out", str(tmp_path / "facegen")])
    table = pd.read_csv(tmp_path / "facegen" / "table.csv")
    rows = list(zip(table["model"], table["seed"]))
    assert {("DCGAN", 0), ("DCGAN", 1), ("E-GAN", 0), ("VAE", 0), ("GA, realness CNN", 0)} <= set(rows)
    assert [seed for model, seed in rows if model == "real renders (floor)"] == [0, 1]
    for name in ("egan/quality.png", "egan/samples.png", "egan/mutations.png", "facegen/images.png",
                 "facegen/ga_fitness.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
