"""FaceGen's pixel-space GA: its operators, its realness fitness, and `python pixel_ga.py`."""

import numpy as np
import pytest
import torch
from gan_cli import gan_runs, history, run_entry
from pipeline_cli import error_lines

from latentevo.models.weights import save_weights
from latentevo.search import evolve
from latentevo.training.data import ShapesSource
from latentevo.training.pixel_ga import PixelProblem, ResetMutation, facegen_ga
from latentevo.training.realness import RealnessConfig, RealnessTrainer, bernoulli_noise


def test_ga_improves_on_an_easy_target_over_its_initial_population():
    target = torch.tensor([1.0, 0.0, 0.0])[:, None, None]  # a red image

    def closeness(images):
        return -(images - target).abs().mean(dim=(1, 2, 3))

    gens = list(evolve(facegen_ga(pop_size=20, elite=4, mutation_rate=0.01), PixelProblem(closeness), 15, seed=0))
    first, last = gens[0], gens[-1]
    assert last.best_cos_sim > first.best_cos_sim + 0.01
    assert last.cos_sim.mean() > first.cos_sim.max()
    # q-elitism: the best never gets worse
    assert all(b.best_cos_sim >= a.best_cos_sim for a, b in zip(gens, gens[1:]))


def test_elitism_keeps_only_the_q_best_parents():
    algorithm = facegen_ga(pop_size=10, elite=3, mutation_rate=0.0)
    gens = evolve(algorithm, PixelProblem(lambda images: images.mean(dim=(1, 2, 3))), 2, seed=1)
    parents = next(gens)
    children = next(gens)
    best_parents = {tuple(x) for x in parents.latents[np.argsort(-parents.cos_sim)[:3]]}
    survivors = {tuple(x) for x in children.latents} & {tuple(x) for x in parents.latents}
    assert best_parents <= {tuple(x) for x in children.latents}
    assert survivors == best_parents  # crossover children are new chromosomes
    assert len(children.latents) == 10


def test_reset_mutation_changes_about_its_rate_of_genes():
    problem = PixelProblem(lambda images: images.mean(dim=(1, 2, 3)))
    x = np.zeros((50, problem.n_var), dtype=int)
    out = ResetMutation(0.05)._do(problem, x, random_state=np.random.default_rng(0))
    assert 0.04 < (out != 0).mean() < 0.06
    assert out.min() >= 0 and out.max() <= 255


def test_bernoulli_noise_replaces_a_fraction_p_and_labels_1_minus_p():
    images = torch.full((200, 3, 32, 32), 0.5)
    noised, labels = bernoulli_noise(images, torch.Generator().manual_seed(0))
    changed = (noised != 0.5).float().mean(dim=(1, 2, 3))
    assert torch.allclose(changed, 1 - labels, atol=0.05)


def test_the_realness_cnn_learns_to_rank_clean_above_noised_images():
    trainer = RealnessTrainer(RealnessConfig(iterations=120, batch_size=32, width=8), ShapesSource(),
                              torch.Generator().manual_seed(0))
    for _ in range(120):
        trainer.step()
    net = trainer.net.eval()
    clean = (ShapesSource().batch(64, torch.Generator().manual_seed(5)) + 1) / 2
    with torch.no_grad():
        assert net(clean).mean() > net(torch.rand_like(clean)).mean() + 0.3


@pytest.fixture(scope="module")
def realness_weights(tmp_path_factory):
    trainer = RealnessTrainer(RealnessConfig(iterations=1, width=8), ShapesSource(), torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("realness") / "realness.safetensors"
    save_weights(path, trainer.network().state_dict(), {"model": "realness", "architecture": trainer.architecture()})
    return path


@pytest.mark.parametrize("fitness", ["realness", "clip"])
def test_pixel_ga_cli_tracks_each_generation(store, tmp_path, realness_weights, fitness):
    args = [f"fitness={fitness}", f"realness={realness_weights}", "generations=4", "pop_size=10", "elite=2",
            "log_every=2", "eval_samples=64", f"seed={3 if fitness == 'clip' else 4}"]
    result = run_entry("pixel_ga.py", args, store, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    client, runs = gan_runs(store)
    (run,) = [r for r in runs if r.data.params.get("fitness") == fitness]
    assert run.info.status == "FINISHED"
    best = history(client, run.info.run_id, "best_fitness")
    assert sorted(best) == [0, 1, 2, 3]
    assert all(best[s + 1] >= best[s] for s in range(3))
    assert all(history(client, run.info.run_id, "mean_fitness")[s] <= best[s] + 1e-9 for s in best)
    assert "fd_classifier_n10" in run.data.metrics
    grids = {a.path for a in client.list_artifacts(run.info.run_id, "population")}
    assert grids == {"population/gen_0000.png", "population/gen_0002.png", "population/gen_0003.png"}


def test_missing_realness_weights_is_one_line(store, tmp_path):
    result = run_entry("pixel_ga.py", [f"realness={tmp_path}/none.safetensors", "experiment_name=gan_bad_ga"],
                       store, tmp_path)
    assert result.returncode == 1
    (line,) = error_lines(result.stderr)
    assert "no trained network" in line and "train.py model=" in line
