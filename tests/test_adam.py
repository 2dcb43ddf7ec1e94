"""algo=adam, the gradient baseline: Adam's update in the search layer, and in the pack loop on
the differentiable DCGAN, where it improves cos_sim, resumes exactly and packs with GA runs."""

import numpy as np
import pytest
from pipeline_cli import MECHANICS_CLIP, histories, runs_of
from test_packs import by_name, same_runs, specs_of

from latentevo.pipeline import run_pack
from latentevo.pipeline.pack import Preempted
from latentevo.search import Adam, LatentProblem, PriorSampling, evolve

N_VAR, BOUND = 4, 1.0
TARGET = np.array([0.5, -0.5, 2.0, 0.0])  # the third coordinate lies outside the box
ADAM = ["generator=dcgan_shapes", "generations=6", "pop_size=16", "log_every=3", *MECHANICS_CLIP]


def cos_sim(latents):
    return -np.sum((latents - TARGET) ** 2, axis=1)


def gradient(latents):
    return -2 * (latents - TARGET)


def sample(n, rng):
    return rng.uniform(-BOUND, BOUND, (n, N_VAR))


def adam_run(generations: int, lr: float = 0.1):
    problem = LatentProblem(cos_sim, N_VAR, BOUND, gradient)
    return list(evolve(Adam(PriorSampling(sample), pop_size=4, lr=lr), problem, generations, seed=0))


def test_adam_steps_as_kingma_and_ba_and_stays_in_the_box():
    first, second = adam_run(2)
    # first step: m_hat = g, v_hat = g^2, so every coordinate moves by lr against the sign of dF
    expected = np.clip(first.latents + 0.1 * np.sign(gradient(first.latents)), -BOUND, BOUND)
    assert np.allclose(second.latents, expected)
    assert first.n_evals == 4 and second.n_evals == 8  # one evaluation per latent per step
    final = adam_run(200)[-1]
    assert np.abs(final.latents).max() <= BOUND
    assert np.allclose(final.best_latent, np.clip(TARGET, -BOUND, BOUND), atol=1e-2)


def test_adam_keeps_the_best_so_far_when_a_step_makes_things_worse():
    gens = adam_run(30, lr=2.0)  # a step this large overshoots
    best = [g.best_cos_sim for g in gens]
    assert best == sorted(best) and best[-1] >= max(g.cos_sim.max() for g in gens)
    assert any(g.cos_sim.max() < best[i - 1] for i, g in enumerate(gens[1:], 1))


def test_adam_improves_cos_sim_on_the_dcgan(tracking):
    [outcome] = run_pack(specs_of("adam_improves", [["algo=adam", "generations=12"]], ADAM))
    assert outcome.status == "FINISHED", outcome.error
    client, [run] = runs_of(tracking, "adam_improves")
    h = histories(client, run.info.run_id)
    mean = [v for _, v in h["mean_cos_sim"]]
    assert mean[-1] > mean[0] + 0.05  # every restart climbs, not only the best
    assert h["best_cos_sim"][-1][1] > h["best_cos_sim"][0][1]
    assert [v for _, v in h["n_evals"]] == [16 * (g + 1) for g in range(12)]


def test_adam_resumed_from_its_checkpoint_has_the_uninterrupted_history(tracking, capsys):
    jobs, common = [["algo=adam", "augment=crops", "augment.views=2"]], [*ADAM, "checkpoint_every=2"]
    asked = iter(range(100))
    with pytest.raises(Preempted):  # stopped after 4 generations, its state checkpointed
        run_pack(specs_of("adam_resumed", jobs, common), stop=lambda: next(asked) == 4)
    assert [r.info.status for r in by_name(tracking, "adam_resumed").values()] == ["KILLED"]
    assert [o.status for o in run_pack(specs_of("adam_resumed", jobs, common))] == ["FINISHED"]
    assert "after generation 3, restoring its search state" in capsys.readouterr().out
    assert [o.status for o in run_pack(specs_of("adam_straight", jobs, common))] == ["FINISHED"]
    same_runs(tracking, "adam_resumed", "adam_straight")


def test_adam_packed_with_ga_runs_is_the_same_runs_as_alone(tracking):
    jobs = [["algo=adam"], ["algo=ga"], ["algo=adam", "seed=1", "prompt='a blue star'"]]
    assert [o.status for o in run_pack(specs_of("adam_packed", jobs, ADAM))] == ["FINISHED"] * 3
    for spec in specs_of("adam_alone", jobs, ADAM):
        assert run_pack([spec])[0].status == "FINISHED"
    same_runs(tracking, "adam_packed", "adam_alone")
