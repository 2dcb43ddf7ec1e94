"""Multi-objective search (algo=nsga2) with the realness objective and with one objective per
prompt term: the logged front is non-dominated and its pick on it, packed runs are the runs
alone, a preempted run resumes to the same history, bad objectives and missing realness weights
are one line."""

import json

import numpy as np
import pytest
import torch
from pipeline_cli import MECHANICS_CLIP, composed_specs, histories, run_cli, runs_of
from test_packs import same_runs

from latentevo.errors import ConfigError, WeightsError
from latentevo.models.dcgan import dcgan_shapes_critic
from latentevo.models.stylegan2 import StyleGAN2Discriminator, stylegan2_realness
from latentevo.models.trained import trained_realness
from latentevo.pipeline import RunSpec, run_pack
from latentevo.pipeline.models import Scores
from latentevo.pipeline.objectives import Columns, objectives_of
from latentevo.pipeline.pack import Preempted
from latentevo.search import FitnessError, LatentProblem, hypervolume, non_dominated
from latentevo.search.front import pick

# pop 16: the mini-CLIP embeds an image alike in any batch of at least 16 (tests/test_packs.py)
POP = 16
SMALL = ["generations=6", f"pop_size={POP}", "log_every=3", "realness=dcgan_shapes", *MECHANICS_CLIP]
NSGA2 = ["algo=nsga2", "prompt='a red circle'"]


def specs_of(experiment: str, jobs: list[list[str]], common: list[str] = SMALL) -> list[RunSpec]:
    return composed_specs(experiment, jobs, common)


def packed_and_alone(uri: str, name: str, jobs: list[list[str]]) -> None:
    """The jobs as one pack (experiment `<name>_packed`) and each alone (`<name>_alone`): the same runs."""
    assert [o.status for o in run_pack(specs_of(f"{name}_packed", jobs))] == ["FINISHED"] * len(jobs)
    for spec in specs_of(f"{name}_alone", jobs):
        assert run_pack([spec])[0].status == "FINISHED"
    same_runs(uri, f"{name}_packed", f"{name}_alone")


def dominated(f: np.ndarray, point: np.ndarray) -> bool:
    return bool(((f <= point).all(1) & (f < point).any(1)).any())


def test_nsga2_logs_a_non_dominated_front_and_picks_its_best_on_it(tracking):
    [outcome] = run_pack(specs_of("nsga2_front", [NSGA2]))
    assert outcome.status == "FINISHED", outcome.error
    client, [run] = runs_of(tracking, "nsga2_front")
    assert run.data.params["objectives"] == "None"  # null: the algorithm's, [clip, realness]
    metrics = histories(client, run.info.run_id)
    assert [s for s, _ in metrics["hypervolume"]] == list(range(6))
    assert all(1 <= size <= POP for _, size in metrics["front_size"])
    assert all(0 < hv <= 1 for _, hv in metrics["hypervolume"])
    final = np.load(client.download_artifacts(run.info.run_id, "population.npz"))
    f, front = final["objectives"], final["front"]
    assert np.allclose(f[:, 0], -final["cos_sim"])
    assert len(front) == metrics["front_size"][-1][1]
    assert not any(dominated(f, f[i]) for i in front)  # nothing in the population beats a front point
    assert all(dominated(f, f[i]) for i in set(range(len(f))) - set(front))
    at = [i for i in front if np.array_equal(final["latents"][i], final["best_latent"])]
    assert at and -f[at[0], 0] == pytest.approx(final["best_cos_sim"]) == metrics["best_cos_sim"][-1][1]
    # the pick's realness objective is relu(1 - D) of the image the realness metric judges again
    assert 1 - f[at[0], 1] == pytest.approx(metrics["best_realness"][-1][1], abs=1e-6)
    assert metrics["hypervolume"][-1][1] == pytest.approx(hypervolume(f[front], np.array([0.0, 1.0])))
    assert "front.png" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_nsga2_packed_beside_ga_runs_is_the_same_runs_as_alone(tracking):
    jobs = [NSGA2, ["algo=ga", "prompt='a red circle'"], ["algo=nsga2", "seed=1", "prompt='a blue star'"]]
    packed_and_alone(tracking, "nsga2", jobs)
    client, runs = runs_of(tracking, "nsga2_packed")
    ga = next(r for r in runs if "algo=ga" in r.info.run_name)
    assert "front_size" not in ga.data.metrics and 0 <= ga.data.metrics["best_realness"] <= 1


def test_a_preempted_nsga2_run_resumes_to_the_history_it_would_have_had(tracking):
    common = [*SMALL, "checkpoint_every=1"]
    [reference] = run_pack(specs_of("nsga2_reference", [NSGA2], common))
    told = iter(range(100))
    with pytest.raises(Preempted):
        run_pack(specs_of("nsga2_preempted", [NSGA2], common), stop=lambda: next(told) == 3)
    [resumed] = run_pack(specs_of("nsga2_preempted", [NSGA2], common))
    assert resumed.status == reference.status == "FINISHED"
    client, [run] = runs_of(tracking, "nsga2_preempted")
    _, [ref] = runs_of(tracking, "nsga2_reference")
    assert histories(client, run.info.run_id) == histories(client, ref.info.run_id)


WITH_REALNESS = "realness=dcgan_shapes"


@pytest.mark.parametrize(("overrides", "message"), [
    (["algo=nsga2", "objectives=[clip]"], "NSGA2 needs two or more objectives"),
    (["algo=ga", "objectives=[clip,realness]", WITH_REALNESS], "GA optimises one objective"),
    (["algo=nsga2"], "objective realness needs a realness model"),
    (["algo=nsga2", "objectives=[realness,clip]", WITH_REALNESS], "clip or terms first"),
    (["algo=nsga2", "objectives=[clip,beauty]"], "distinct names of clip, terms, realness"),
    (["algo=nsga2", "objectives=[clip,terms]", "prompt='a red star | a blue background'"], r"first \(not both\)"),
    (["algo=nsga2", "objectives=[terms]", "prompt='a red star'"],
     "NSGA2 needs two or more objectives.*one per prompt term, and the prompt has 1"),
    (["algo=ga", "objectives=[terms]", "prompt='a red star | a blue background'"], "GA optimises one objective"),
    (["algo=nsga2", "objectives=[terms]", "prompt='a red star | a blue background | -a red background'"],
     r"algo.pick_weights must be 3 non-negative weights, one per objective \(term0, term1, term2\).*or null"),
    (["algo=nsga2", "algo.pick_weights=[1.0]", WITH_REALNESS], "algo.pick_weights must be 2 non-negative weights"),
])
def test_bad_objectives_are_one_clear_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        specs_of("bad", [overrides], [o for o in SMALL if o != WITH_REALNESS])


def test_the_default_objectives_are_the_algorithms():
    nsga2, ga = specs_of("defaults", [["algo=nsga2"], ["algo=ga"]])
    assert objectives_of(nsga2.cfg) == ["clip", "realness"] and objectives_of(ga.cfg) == ["clip"]


def test_missing_realness_weights_are_one_line_and_leave_no_run(store, tmp_path):
    args = [*NSGA2, *SMALL, "realness=facegen", f"realness.path={tmp_path}/none.safetensors",
            "experiment_name=no_realness"]
    result = run_cli(args, store, tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no trained network at"), result.stderr
    assert runs_of(store, "no_realness")[1] == []
    with pytest.raises(WeightsError, match="missing weights file"):
        dcgan_shapes_critic(weights_dir=tmp_path)
    with pytest.raises(WeightsError, match="no weights for StyleGAN2-cat"):
        stylegan2_realness("cat", weights=str(tmp_path))


def test_a_stylegan2_checkpoint_without_its_discriminator_is_one_line(tmp_path):
    torch.save({"g_ema": {}}, tmp_path / "stylegan2-cat-config-f.pt")
    with pytest.raises(WeightsError, match="hold no 'd' discriminator"):
        stylegan2_realness("cat", weights=str(tmp_path))


def test_stylegan2_discriminator_judges_each_image_alone():
    realness = stylegan2_realness("ffhq", resolution=32, random_init=True)
    images = torch.rand(5, 3, 64, 64)
    together = realness(images)
    alone = torch.cat([realness(image[None]) for image in images])
    assert together.shape == (5,) and ((together >= 0) & (together <= 1)).all()
    assert torch.allclose(together, alone, atol=1e-6)
    # the converted checkpoints' discriminator keys (rosinality's `Discriminator`)
    keys = StyleGAN2Discriminator(32).state_dict().keys()
    assert {"convs.0.0.weight", "convs.1.conv2.0.kernel", "convs.1.skip.1.weight", "final_conv.0.weight",
            "final_linear.0.weight", "final_linear.1.bias"} <= set(keys)


def test_the_committed_critic_judges_each_image_alone_in_any_batch():
    """A pack scores its runs' images in chunks of up to 64: each image's realness must be the
    one it has alone (float32 sigmoid put 1-3 images in 64 an ulp off)."""
    from latentevo.models.shapes import ShapesGenerator

    critic, generator = dcgan_shapes_critic(), ShapesGenerator()
    for seed in range(4):
        images = generator(generator.sample_latents(64, torch.Generator().manual_seed(seed)))
        alone = torch.cat([critic(image[None]) for image in images])
        for chunk in (16, 48, 64):
            assert torch.equal(torch.cat([critic(c) for c in images.split(chunk)]), alone), (seed, chunk)


def test_facegen_realness_cnn_loads_by_path(tmp_path):
    from latentevo.models.realness import RealnessCNN
    from latentevo.models.weights import save_weights

    save_weights(tmp_path / "realness.safetensors", RealnessCNN(8).state_dict(),
                 {"model": "realness", "architecture": {"width": 8}})
    realness = trained_realness(str(tmp_path / "realness.safetensors"))
    scores = realness(torch.rand(3, 3, 64, 64))
    assert scores.shape == (3,) and ((scores >= 0) & (scores <= 1)).all()


def test_the_committed_critic_judges_images_in_zero_to_one():
    scores = dcgan_shapes_critic()(torch.rand(4, 3, 32, 32))
    assert scores.shape == (4,) and ((scores >= 0) & (scores <= 1)).all()


def test_front_pick_and_hypervolume():
    f = np.array([[-0.5, 0.5], [-0.2, 0.1], [-0.1, 0.9], [-0.6, 0.6]])
    assert list(non_dominated(f)) == [0, 1, 3]
    front = f[non_dominated(f)]
    assert pick(front, np.array([1.0, 0.0])) == 2  # all weight on cos_sim: the highest cos_sim
    assert pick(front, np.array([0.0, 1.0])) == 1  # all on realness: the most real
    assert pick(front[:1], np.array([0.5, 0.5])) == 0
    assert hypervolume(np.array([[-0.5, 0.5]]), np.array([0.0, 1.0])) == pytest.approx(0.25)
    assert hypervolume(np.array([[0.1, 0.5]]), np.array([0.0, 1.0])) == 0  # worse than the reference


def test_a_multi_objective_problem_checks_its_fitness_columns():
    problem = LatentProblem(lambda x: np.zeros((len(x), 3)), n_var=2, bound=1.0, n_obj=2)
    with pytest.raises(FitnessError, match=r"expected \(4, 2\)"):
        problem.evaluate(np.zeros((4, 2)))
    problem = LatentProblem(lambda x: np.full((len(x), 2), np.nan), n_var=2, bound=1.0, n_obj=2)
    with pytest.raises(FitnessError, match="NaN"):
        problem.evaluate(np.zeros((4, 2)))


def test_the_committed_critic_was_trained_by_its_recipe_against_the_committed_generator():
    from gan_cli import compose_train
    from omegaconf import OmegaConf

    from latentevo.models.weights import WORLD_DIR
    from latentevo.training.jobs import loaded_files

    committed = json.loads((WORLD_DIR / "critic.json").read_text())
    cfg = compose_train(["world=critic"])
    assert committed["model"] == "critic" and cfg.half and cfg.manifest
    assert committed["training"]["model"] == OmegaConf.to_container(cfg.model, resolve=True)
    assert committed["training"]["seed"] == cfg.seed
    assert WORLD_DIR / "dcgan.safetensors" in loaded_files(cfg)  # the generator is part of the job
    assert 0.5 < committed["evaluation"]["accuracy"] <= 1


def test_a_tiny_critic_trains_and_is_judged_on_held_out_images():
    from latentevo.training.critic import CriticConfig, CriticTrainer
    from latentevo.training.data import ShapesSource

    trainer = CriticTrainer(CriticConfig(iterations=2, batch_size=8, ndf=8), ShapesSource(),
                            torch.Generator().manual_seed(0))
    assert np.isfinite(trainer.step()["loss"])
    judged = trainer.evaluate(16)
    assert 0 <= judged["accuracy"] <= 1 and 0 <= judged["auc"] <= 1 and trainer.net.training


# --- one objective per prompt term --------------------------------------------------------------

THREE_TERMS = "prompt='a red circle | a blue background:0.5 | -a red background'"
TERMS = ["algo=nsga2", "objectives=[terms]", THREE_TERMS, "algo.pick_weights=null"]


def test_term_columns_are_each_terms_weighted_cos_sim_a_penalty_minimised_as_it_is():
    [spec] = specs_of("columns", [TERMS])
    columns = Columns.of(spec.cfg)
    assert columns.names == ["term0", "term1", "term2"]
    terms = np.array([[0.6, 0.4, 0.3], [0.2, 0.8, -0.1]])
    scores = Scores(terms, cos_sim=terms @ np.array([1.0, 0.5, -1.0]))
    f = columns.values(scores)
    assert np.allclose(f, [[-0.6, -0.2, 0.3], [-0.2, -0.4, -0.1]])  # lower is better in every column
    assert np.allclose(columns.fitness(f), scores.cos_sim)
    # a positive term counts from cos_sim 0, the penalty up to cos_sim 1 (times its weight)
    assert list(columns.reference()) == [0.0, 0.0, 1.0]
    [with_realness] = specs_of("columns", [["algo=nsga2", "objectives=[terms,realness]", THREE_TERMS,
                                            "algo.pick_weights=[1,1,1,1]"]])
    assert Columns.of(with_realness.cfg).names == ["term0", "term1", "term2", "realness"]
    assert list(Columns.of(with_realness.cfg).reference()) == [0.0, 0.0, 1.0, 1.0]


def test_one_objective_per_term_logs_a_front_non_dominated_in_term_space_and_picks_on_it(tracking):
    [outcome] = run_pack(specs_of("terms_front", [TERMS]))
    assert outcome.status == "FINISHED", outcome.error
    client, [run] = runs_of(tracking, "terms_front")
    metrics = histories(client, run.info.run_id)
    final = np.load(client.download_artifacts(run.info.run_id, "population.npz"))
    f, front = final["objectives"], final["front"]
    assert f.shape == (POP, 3) and len(front) == metrics["front_size"][-1][1]
    assert not any(dominated(f, f[i]) for i in front)
    assert all(dominated(f, f[i]) for i in set(range(len(f))) - set(front))
    # the fitness (best_cos_sim, the population's cos_sim) is the weighted sum the columns sum to
    assert np.allclose(final["cos_sim"], -f.sum(1))
    at = [i for i in front if np.array_equal(final["latents"][i], final["best_latent"])]
    assert at, "the pick is a point of the front"
    assert -f[at[0]].sum() == pytest.approx(final["best_cos_sim"]) == metrics["best_cos_sim"][-1][1]
    # each column is its term's cos_sim of that image: term1 weighted 0.5, the penalty as it is
    best_terms = [metrics[f"term{i}_cos_sim"][-1][1] for i in range(3)]
    assert f[at[0]] == pytest.approx([-best_terms[0], -0.5 * best_terms[1], best_terms[2]], abs=1e-6)
    assert metrics["hypervolume"][-1][1] == pytest.approx(hypervolume(f[front], np.array([0.0, 0.0, 1.0])))
    assert "front.png" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_term_objectives_packed_beside_other_runs_are_the_same_runs_as_alone(tracking):
    jobs = [TERMS, ["algo=nsga2", "objectives=[terms,realness]", "seed=1", "algo.pick_weights=[0.2,0.2,0.6]",
                    "prompt='a blue star | -a yellow background'"],
            ["algo=ga", THREE_TERMS]]
    packed_and_alone(tracking, "terms", jobs)
    client, runs = runs_of(tracking, "terms_packed")
    two = next(r for r in runs if "seed=1" in r.info.run_name)
    assert np.load(client.download_artifacts(two.info.run_id, "population.npz"))["objectives"].shape == (POP, 3)
