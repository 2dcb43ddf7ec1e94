"""FaceGen's genetic algorithm in pixel space (section 3.1): a chromosome is the flattened
image, each gene a channel value in [0, 255]; random initial pixels, μ = 100 with the q = 20
best parents kept (q-elitism), single-point crossover and a mutation that resets a small
fraction of genes to random values. pymoo's GA, tournament selection and single-point
crossover; the survival and the reset mutation are ours (pymoo has neither)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.survival import Survival
from pymoo.operators.crossover.pntx import SinglePointCrossover
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from ..search.problem import FitnessError

#: (B, 3, R, R) images in [0, 1] -> (B,) fitness to maximise
ImageFitness = Callable[[torch.Tensor], torch.Tensor]


class PixelProblem(Problem):
    """Maximise an image fitness over flattened images; pymoo minimises F = -fitness."""

    def __init__(self, fitness: ImageFitness, resolution: int = 32):
        super().__init__(n_var=3 * resolution * resolution, n_obj=1, xl=0, xu=255, vtype=int)
        self.fitness, self.resolution = fitness, resolution

    def images(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(x, dtype=np.float32) / 255).view(-1, 3, self.resolution, self.resolution)

    def _evaluate(self, x, out, *args, **kwargs):
        with torch.inference_mode():
            f = self.fitness(self.images(x)).double().numpy()
        if not np.isfinite(f).all():
            raise FitnessError(f"fitness is NaN or infinite for {int((~np.isfinite(f)).sum())} of {len(x)} images")
        out["F"] = -f[:, None]


class ResetMutation(Mutation):
    """Each gene, with probability `rate`, gets a new uniform value in its bounds."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def _do(self, problem, X, random_state=None, **kwargs):
        reset = random_state.random(X.shape) < self.rate
        values = random_state.integers(problem.xl, problem.xu + 1, size=X.shape)
        return np.where(reset, values, X)


class ElitistSurvival(Survival):
    """The `elite` best of the parents plus every offspring: with n_offsprings = μ - q, the
    next population is again μ, and no more than q individuals outlive their generation."""

    def __init__(self, elite: int):
        super().__init__(filter_infeasible=False)
        self.elite = elite

    def _do(self, problem, pop, n_survive=None, algorithm=None, **kwargs):
        n_off = len(pop) - n_survive
        if n_off <= 0:  # the initial population: nothing to replace
            return pop[np.argsort(pop.get("F")[:, 0])][:n_survive]
        parents, offspring = pop[: len(pop) - algorithm.n_offsprings], pop[len(pop) - algorithm.n_offsprings :]
        elite = parents[np.argsort(parents.get("F")[:, 0])[: self.elite]]
        merged = Population.merge(elite, offspring)
        return merged[np.argsort(merged.get("F")[:, 0])]


def facegen_ga(pop_size: int = 100, elite: int = 20, mutation_rate: float = 0.01) -> GA:
    if not 0 <= elite < pop_size:
        raise ValueError(f"elite must be in [0, pop_size), got {elite} for pop_size {pop_size}")
    return GA(
        pop_size=pop_size,
        n_offsprings=pop_size - elite,
        sampling=IntegerRandomSampling(),
        crossover=SinglePointCrossover(prob=1.0),
        mutation=ResetMutation(mutation_rate),
        survival=ElitistSurvival(elite),
        # 3072-gene duplicates are vanishingly rare and costly to look for
        eliminate_duplicates=False,
    )
