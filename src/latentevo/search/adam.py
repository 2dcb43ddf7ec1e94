"""Gradient ascent baseline (as Big Sleep and FuseDream search a GAN's latent space): Adam on
every latent of the population at once, a set of parallel restarts, in pymoo's ask/tell loop.

The gradient comes in as pymoo's `dF` (the problem evaluates F and dF); the update is Adam's
(Kingma & Ba 2015) in numpy, and its moments are plain arrays on the algorithm, so the state
pickles into a checkpoint as any pymoo algorithm's does."""

from __future__ import annotations

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.evaluator import Evaluator
from pymoo.core.population import Population
from pymoo.core.sampling import Sampling
from pymoo.util.display.single import SingleObjectiveOutput
from pymoo.util.optimum import filter_optimum


class Adam(Algorithm):
    """`pop_size` latents drawn from `sampling` (generation 0), each then moved by one Adam step
    on F = -cos_sim per generation, and clipped back into the problem's box after each step
    (the generator was trained on latents inside it). One evaluation is one latent's forward
    and backward pass. The best so far is kept across generations: a step can make a latent
    worse."""

    def __init__(self, sampling: Sampling, pop_size: int, lr: float = 0.05, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, **kwargs):
        super().__init__(output=SingleObjectiveOutput(), evaluator=Evaluator(evaluate_values_of=["F", "dF"]),
                         **kwargs)
        self.sampling, self.pop_size = sampling, pop_size
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        # Adam's state: first and second moments of each latent's gradient, and the step count
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.t = 0
        self.next_X: np.ndarray | None = None  # the latents the next generation asks for

    def _initialize_infill(self) -> Population:
        return self.sampling.do(self.problem, self.pop_size, random_state=self.random_state)

    def _initialize_advance(self, infills=None, **kwargs) -> None:
        X = infills.get("X")
        self.m, self.v = np.zeros_like(X), np.zeros_like(X)
        self._step(infills)

    def _infill(self) -> Population:
        return Population.new(X=self.next_X)

    def _advance(self, infills=None, **kwargs) -> None:
        self.pop = infills
        self._step(infills)

    def _step(self, told: Population) -> None:
        """One Adam step from the told latents along their gradient dF, into the box."""
        X, dF = told.get("X", "dF")
        g = dF[:, 0, :]  # one objective
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g**2
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        self.next_X = np.clip(X - self.lr * m_hat / (np.sqrt(v_hat) + self.eps), self.problem.xl, self.problem.xu)

    def _set_optimum(self) -> None:
        # the population is the current latents; the optimum is the best ever evaluated
        seen = self.pop if self.opt is None else Population.merge(self.opt, self.pop)
        self.opt = filter_optimum(seen, least_infeasible=True)
