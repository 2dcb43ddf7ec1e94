"""The ask/tell loop, one generation at a time, so a caller can log (or checkpoint) between.

A generation is split at its fitness call (`ask`, `to_evaluate`, `tell`), so that a caller can
score the candidates of many runs together and tell each run its own fitness."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from pymoo.algorithms.soo.nonconvex.de import DE
from pymoo.core.algorithm import Algorithm
from pymoo.core.population import Population

from .front import non_dominated, pick
from .problem import LatentProblem

# DE/x/1 builds a mutant from a base and the difference of two others, all distinct from the
# target; pymoo silently reuses parents in smaller populations. CMA-ES recombines >= 2 parents.
MIN_POP_SIZE: dict[type, int] = {DE: 4}
#: (P, n_obj) values minimised -> (P,) the cos_sims a run reports (several objectives)
FitnessOfF = Callable[[np.ndarray], np.ndarray]


def min_pop_size(algorithm_cls: type[Algorithm]) -> int:
    return next((n for cls, n in MIN_POP_SIZE.items() if issubclass(algorithm_cls, cls)), 2)


def multi_objective(algorithm_cls: type[Algorithm]) -> bool:
    """Whether the algorithm is one of pymoo's multi-objective ones (NSGA-II, ...)."""
    return any(cls.__module__.startswith("pymoo.algorithms.moo.") for cls in algorithm_cls.__mro__)


@dataclass(frozen=True)
class Generation:
    """What the algorithm holds after one generation (index 0 = the initial population). With
    several objectives the best is the point of the population's front the algorithm picks."""

    index: int
    latents: np.ndarray  # (P, n_var) the population carried forward
    cos_sim: np.ndarray  # (P,) the fitness (several objectives: as the run's `fitness` gives it from F)
    best_latent: np.ndarray  # (n_var,) best found so far, or the front's pick
    best_cos_sim: float
    n_evals: int
    objectives: np.ndarray | None = None  # (P, n_obj) values minimised (several objectives only)
    front: np.ndarray | None = None  # indices of the population's non-dominated points


def pick_of(algorithm: Algorithm):
    """How the algorithm picks one point of a front: its own `pick`, else equal pseudo-weights."""
    return getattr(algorithm, "pick", None) or (lambda f: pick(f, np.full(f.shape[1], 1 / f.shape[1])))


def first_column(f: np.ndarray) -> np.ndarray:
    """The cos_sims of several objectives' values whose first column is -cos_sim."""
    return -f[:, 0]


def snapshot(algorithm: Algorithm, index: int, fitness: FitnessOfF = first_column) -> Generation:
    latents, f = algorithm.pop.get("X", "F")
    n_evals = algorithm.evaluator.n_eval
    if f.shape[1] > 1:
        front = non_dominated(f)
        best = front[pick_of(algorithm)(f[front])]
        cos_sim = fitness(f)
        return Generation(index, latents, cos_sim, latents[best], float(cos_sim[best]), n_evals, f, front)
    best = algorithm.opt[0]
    return Generation(
        index=index,
        latents=latents,
        cos_sim=-f[:, 0],
        best_latent=best.X,
        best_cos_sim=float(-best.F[0]),
        n_evals=n_evals,
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


def tell(algorithm: Algorithm, infills: Population, fitness: FitnessOfF = first_column) -> Generation:
    """Evaluate the asked `infills` with the algorithm's problem and tell them back. With several
    objectives, `fitness` gives the population's cos_sims from its values minimised."""
    algorithm.evaluator.eval(algorithm.problem, infills)
    algorithm.tell(infills=infills)
    # pymoo counts generations from 1 and has moved on to the next one
    return snapshot(algorithm, algorithm.n_iter - 2, fitness)


def needs_gradient(algorithm: Algorithm) -> bool:
    """Whether the algorithm's evaluations include dF, the gradient of the fitness."""
    return "dF" in algorithm.evaluator.evaluate_values_of


def state_is_picklable(algorithm: Algorithm) -> bool:
    """pymoo's CMA-ES keeps its state in a running generator, which its pickle leaves out; such a
    run resumes by replaying its generations from the seed instead. (Its module, and `cma` with
    it, is imported only by runs that use it: a second of every process's start.)"""
    cmaes = sys.modules.get("pymoo.algorithms.soo.nonconvex.cmaes")
    return cmaes is None or not isinstance(algorithm, cmaes.CMAES)
