"""The ask/tell loop, one generation at a time, so a caller can log (or checkpoint) between.

A generation is split at its fitness call (`ask`, `to_evaluate`, `tell`), so that a caller can
score the candidates of many runs together and tell each run its own fitness."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pymoo.algorithms.soo.nonconvex.cmaes import CMAES
from pymoo.algorithms.soo.nonconvex.de import DE
from pymoo.core.algorithm import Algorithm
from pymoo.core.population import Population

from .problem import LatentProblem

# DE/x/1 builds a mutant from a base and the difference of two others, all distinct from the
# target; pymoo silently reuses parents in smaller populations. CMA-ES recombines >= 2 parents.
MIN_POP_SIZE: dict[type, int] = {DE: 4}


def min_pop_size(algorithm_cls: type[Algorithm]) -> int:
    return next((n for cls, n in MIN_POP_SIZE.items() if issubclass(algorithm_cls, cls)), 2)


@dataclass(frozen=True)
class Generation:
    """What the algorithm holds after one generation (index 0 = the initial population)."""

    index: int
    latents: np.ndarray  # (P, n_var) the population carried forward
    cos_sim: np.ndarray  # (P,)
    best_latent: np.ndarray  # (n_var,) best found so far
    best_cos_sim: float
    n_evals: int


def snapshot(algorithm: Algorithm, index: int) -> Generation:
    latents, f = algorithm.pop.get("X", "F")
    best = algorithm.opt[0]
    return Generation(
        index=index,
        latents=latents,
        cos_sim=-f[:, 0],
        best_latent=best.X,
        best_cos_sim=float(-best.F[0]),
        n_evals=algorithm.evaluator.n_eval,
    )


def evolve(algorithm: Algorithm, problem: LatentProblem, generations: int, seed: int) -> Iterator[Generation]:
    """Run `algorithm` for `generations` generations, yielding the state after each one."""
    algorithm.setup(problem, termination=("n_gen", generations), seed=seed, verbose=False)
    return run_on(algorithm)


def run_on(algorithm: Algorithm) -> Iterator[Generation]:
    """Step a set-up algorithm, fresh or restored from a checkpoint, to its termination."""
    while algorithm.has_next():
        yield tell(algorithm, algorithm.ask())


def to_evaluate(algorithm: Algorithm, infills: Population) -> np.ndarray:
    """The latents of `infills` that pymoo's evaluator will pass to the problem, in its order:
    those not yet evaluated."""
    keys = algorithm.evaluator.evaluate_values_of
    todo = [i for i, ind in enumerate(infills) if not all(k in ind.evaluated for k in keys)]
    return infills[todo].get("X") if todo else np.empty((0, algorithm.problem.n_var))


def tell(algorithm: Algorithm, infills: Population) -> Generation:
    """Evaluate the asked `infills` with the algorithm's problem and tell them back."""
    algorithm.evaluator.eval(algorithm.problem, infills)
    algorithm.tell(infills=infills)
    # pymoo counts generations from 1 and has moved on to the next one
    return snapshot(algorithm, algorithm.n_iter - 2)


def needs_gradient(algorithm: Algorithm) -> bool:
    """Whether the algorithm's evaluations include dF, the gradient of the fitness."""
    return "dF" in algorithm.evaluator.evaluate_values_of


def state_is_picklable(algorithm: Algorithm) -> bool:
    """pymoo's CMA-ES keeps its state in a running generator, which its pickle leaves out; such a
    run resumes by replaying its generations from the seed instead."""
    return not isinstance(algorithm, CMAES)
