"""The search layer with pymoo's algorithms as the configs build them, on a toy fitness."""

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate

from latentevo.search import FitnessError, LatentProblem, PriorSampling, evolve, min_pop_size

CONF = str(Path(__file__).resolve().parents[1] / "conf")
ALGOS = ["ga", "de", "de_best1_bin", "de_rand1_exp", "cmaes", "random"]
N_VAR, BOUND = 8, 3.0
TARGET = np.full(N_VAR, 1.0)


def toy_fitness(latents: np.ndarray) -> np.ndarray:
    """A cos_sim-like score in (0, 1], highest at TARGET."""
    return 1 / (1 + np.linalg.norm(latents - TARGET, axis=1))


def prior(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rng.standard_normal((n, N_VAR)), -BOUND, BOUND)


def algo_cfg(name: str, pop_size: int = 16):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=[f"algo={name}", f"pop_size={pop_size}"]).algo


def run_algo(name: str, generations: int, seed: int, fitness=toy_fitness, sample=prior):
    algorithm = instantiate(algo_cfg(name), sampling=PriorSampling(sample))
    return list(evolve(algorithm, LatentProblem(fitness, N_VAR, BOUND), generations, seed))


@pytest.mark.parametrize("name", ALGOS)
def test_every_algorithm_improves_on_its_initial_population(name):
    gens = run_algo(name, generations=30, seed=0)
    assert [g.index for g in gens] == list(range(30))
    assert gens[-1].best_cos_sim > gens[0].best_cos_sim + 0.05
    for g in gens:
        assert g.cos_sim.max() <= g.best_cos_sim + 1e-12
        assert np.all(np.abs(g.latents) <= BOUND)
    bests = [g.best_cos_sim for g in gens]
    assert bests == sorted(bests), "the best found so far never gets worse"


@pytest.mark.parametrize("name", ["ga", "de", "cmaes"])
def test_same_seed_same_history_other_seed_another(name):
    # seed 0 included: the cma package reads 0 as "seed from the clock"
    a, b, c = (run_algo(name, generations=10, seed=s) for s in (0, 0, 1))
    assert all(np.array_equal(x.latents, y.latents) for x, y in zip(a, b))
    assert not np.array_equal(a[-1].latents, c[-1].latents)


@pytest.mark.parametrize("name", ALGOS)
def test_generation_zero_is_drawn_from_the_prior(name):
    """A prior far from the uniform box: all initial latents must come from it."""
    shifted = lambda n, rng: 2.5 + 0.01 * rng.standard_normal((n, N_VAR))  # noqa: E731
    gen0 = run_algo(name, generations=1, seed=0, sample=shifted)[0]
    assert len(gen0.latents) >= 16
    assert np.all(np.abs(gen0.latents - 2.5) < 0.1)


def test_one_fitness_call_per_generation_with_the_whole_population():
    sizes = []

    def counting(latents):
        sizes.append(len(latents))
        return toy_fitness(latents)

    run_algo("de", generations=5, seed=0, fitness=counting)
    assert sizes == [16] * 5


def test_nan_fitness_is_an_error_not_a_ranking():
    def broken(latents):
        out = toy_fitness(latents)
        out[3] = np.nan
        return out

    with pytest.raises(FitnessError, match="NaN"):
        run_algo("ga", generations=2, seed=0, fitness=broken)


def test_min_pop_size():
    assert min_pop_size(get_class(algo_cfg("de")._target_)) == 4
    assert min_pop_size(get_class(algo_cfg("de_rand1_exp")._target_)) == 4
    assert min_pop_size(get_class(algo_cfg("ga")._target_)) == 2
    assert min_pop_size(get_class(algo_cfg("cmaes")._target_)) == 2


def test_de_configs_are_the_named_variants():
    assert algo_cfg("de").variant == "DE/rand/1/bin"
    assert algo_cfg("de_best1_bin").variant == "DE/best/1/bin"
    assert algo_cfg("de_rand1_exp").variant == "DE/rand/1/exp"
    assert algo_cfg("de", pop_size=7).pop_size == 7
