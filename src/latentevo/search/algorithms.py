"""pymoo algorithms whose constructors need plumbing to start from the generator's prior, or
that carry how a run picks its result."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2 as PymooNSGA2
from pymoo.algorithms.soo.nonconvex.cmaes import CMAES as PymooCMAES
from pymoo.core.sampling import Sampling

from .front import pick


class CMAES(PymooCMAES):
    """pymoo's CMA-ES whose generation 0 is `pop_size` draws of `sampling`; the best of them
    is the start point x0. (pymoo forwards unknown keyword arguments to `cma` as options, so
    the sampling has to go in as x0.)"""

    def __init__(self, sampling: Sampling, pop_size: int, **kwargs):
        super().__init__(x0=sampling, pop_size=pop_size, **kwargs)
        self.n_sample_points = pop_size

    def _setup(self, problem, **kwargs):
        super()._setup(problem, **kwargs)
        # cma reads seed 0 as "seed from the clock": shifted, every seed (0 included) reproduces
        self.options["seed"] = self.seed + 1


class NSGA2(PymooNSGA2):
    """pymoo's NSGA-II, with the pseudo-weights (one per objective) by which a run picks the one
    point of its front it reports as its best; None: equal ones."""

    def __init__(self, pick_weights: Sequence[float] | None, **kwargs):
        super().__init__(**kwargs)
        self.pick_weights = None if pick_weights is None else np.asarray(pick_weights, dtype=float)

    def pick(self, f: np.ndarray) -> int:
        weights = np.full(f.shape[1], 1 / f.shape[1]) if self.pick_weights is None else self.pick_weights
        return pick(f, weights)
