"""The latent-space problem: one batched fitness call per generation, minimising -cos_sim (and,
with several objectives, the other columns the fitness returns)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling

from ..errors import LatentevoError

#: (n, rng) -> (n, n_var) latents drawn from the generator's prior
SampleFn = Callable[[int, np.random.Generator], np.ndarray]
#: (n, n_var) latents -> (n,) cosine similarities to the prompt; with n_obj > 1, (n, n_obj) values
#: to minimise, column 0 being -cos_sim
EvaluateFn = Callable[[np.ndarray], np.ndarray]
#: (n, n_var) latents -> (n, n_var) gradient of each one's cosine similarity with respect to it
GradientFn = Callable[[np.ndarray], np.ndarray]


class FitnessError(LatentevoError):
    """The fitness function returned values the search cannot rank."""


class LatentProblem(Problem):
    """Maximise cos_sim over the box [-bound, bound]^n_var; pymoo minimises, so F = -cos_sim
    (the "reversed cosine similarity"). Whole populations are evaluated in one call. With
    n_obj > 1 the fitness gives every objective to minimise, -cos_sim first. An algorithm that
    asks for dF (gradient-based ones, single-objective) gets -d cos_sim / d latent from `gradient`."""

    def __init__(self, evaluate: EvaluateFn, n_var: int, bound: float, gradient: GradientFn | None = None,
                 n_obj: int = 1):
        super().__init__(n_var=n_var, n_obj=n_obj, xl=-bound, xu=bound, vtype=float)
        self.evaluate_latents, self.gradient = evaluate, gradient

    def _evaluate(self, x, out, *args, **kwargs):
        values = np.asarray(self.evaluate_latents(x), dtype=np.float64)
        expected = (len(x),) if self.n_obj == 1 else (len(x), self.n_obj)
        if values.shape != expected:
            raise FitnessError(f"fitness returned shape {values.shape} for {len(x)} latents, expected {expected}")
        bad = ~np.isfinite(values).reshape(len(x), -1).all(1)
        if bad.any():
            raise FitnessError(
                f"fitness is NaN or infinite for {int(bad.sum())} of {len(x)} latents; "
                "the generator or scorer produced invalid values; check their weights and outputs"
            )
        out["F"] = -values[:, None] if self.n_obj == 1 else values
        if "dF" in out:  # pymoo puts every value asked for in `out`
            out["dF"] = -self._gradient(x)[:, None, :]

    def _gradient(self, x: np.ndarray) -> np.ndarray:
        if self.gradient is None:
            raise FitnessError("the algorithm needs the fitness's gradient, which this problem was not given")
        grad = np.asarray(self.gradient(x), dtype=np.float64)
        if grad.shape != x.shape:
            raise FitnessError(f"gradient has shape {grad.shape} for latents of shape {x.shape}")
        if not np.isfinite(grad).all():
            raise FitnessError("the fitness's gradient is NaN or infinite; the generator or scorer is not "
                               "differentiable there")
        return grad


class GivenFitness:
    """An `EvaluateFn` answering with fitness computed beforehand: a pack scores the candidates
    of all its runs in one pass, then gives each run its own share (and its gradient, where the
    run asked for it) before telling it. `gradient` is the problem's `GradientFn`."""

    def __init__(self):
        self._given: tuple[np.ndarray, np.ndarray] | None = None
        self._given_gradient: tuple[np.ndarray, np.ndarray] | None = None

    def give(self, latents: np.ndarray, values: np.ndarray, gradient: np.ndarray | None = None) -> None:
        self._given = (latents, values)
        self._given_gradient = None if gradient is None else (latents, gradient)

    def __call__(self, latents: np.ndarray) -> np.ndarray:
        given, self._given = self._given, None
        return self._check(given, latents, "fitness")

    def gradient(self, latents: np.ndarray) -> np.ndarray:
        given, self._given_gradient = self._given_gradient, None
        return self._check(given, latents, "gradient")

    @staticmethod
    def _check(given: tuple[np.ndarray, np.ndarray] | None, latents: np.ndarray, what: str) -> np.ndarray:
        if given is None or not np.array_equal(given[0], latents):
            raise RuntimeError(f"the {what} given does not belong to the latents evaluated")
        return given[1]


class PriorSampling(Sampling):
    """Initial populations drawn from the generator's prior instead of uniformly from the box,
    with pymoo's random state so that the seed fixes them."""

    def __init__(self, sample: SampleFn):
        super().__init__()
        self.sample = sample

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        return np.asarray(self.sample(n_samples, random_state), dtype=np.float64)
