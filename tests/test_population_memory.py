"""Large populations in bounded memory: duplicate elimination without the n x n distance matrix, and a
diversity metric without pdist's n(n-1)/2 distances, both matching what they replace."""

import itertools
import tracemalloc

import numpy as np
import pytest
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.callback import Callback
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.optimize import minimize
from scipy.spatial.distance import pdist

from latentevo.search import BoundedDuplicateElimination, population_diversity
from latentevo.search.diversity import EXACT_CAP


def _identity(X):
    return X


def _population_with_duplicates(seed, n=300, dim=6):
    """Rows near 0.01 in scale (so offsets of a few 1e-17 give distinct floats), with exact copies,
    distinct rows within 1e-16 of an earlier or later row, rows just outside it, and NaN/inf rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=0.01, size=(n, dim))
    src, dst = rng.choice(n, 40, replace=False).reshape(2, 20)
    X[dst[:8]] = X[src[:8]]                                           # exact copies
    X[dst[8:14]] = X[src[8:14]]
    X[dst[8:14], 0] += rng.choice([2e-17, -3e-17, 6e-17], 6)          # near, within epsilon
    X[dst[14:18]] = X[src[14:18]]
    X[dst[14:18], 1] += 3e-16                                          # near, outside epsilon
    X[dst[18], 2], X[dst[19], 3] = np.nan, np.inf
    X[src[18]] = X[dst[18]]                                            # a copy of a NaN row: no duplicate
    return X


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("epsilon", [1e-16, 0.0, 1e-2])
def test_do_matches_pymoo_default(seed, epsilon):
    X = _population_with_duplicates(seed)
    rng = np.random.default_rng(100 + seed)
    other = np.vstack([X[rng.choice(len(X), 10)],                                    # exact
                       X[rng.choice(len(X), 10)] + np.r_[4e-17, np.zeros(X.shape[1] - 1)],  # near
                       rng.normal(scale=0.01, size=(10, X.shape[1]))])               # unrelated
    # dense_max=0: the tree path even for these small populations
    ours = BoundedDuplicateElimination(epsilon, func=_identity, dense_max=0)
    theirs = DefaultDuplicateElimination(epsilon, func=_identity)
    for against in (None, other, other[:0]):
        got = ours._do(X, against, np.zeros(len(X), dtype=bool))
        want = theirs._do(X, against, np.zeros(len(X), dtype=bool))
        np.testing.assert_array_equal(got, want)
        if against is None or len(against):
            assert 0 < want.sum() < len(X)  # the case is not trivially all or nothing
    if epsilon == 1e-16:  # the near, distinct rows matter: without them the answer changes
        exact_only = DefaultDuplicateElimination(0.0, func=_identity)._do(X, None, np.zeros(len(X), dtype=bool))
        within = theirs._do(X, None, np.zeros(len(X), dtype=bool))
        assert within.sum() > exact_only.sum()


def test_do_with_populations_and_return_indices():
    X = _population_with_duplicates(7)
    pop = Population.new(X=X)
    other = Population.new(X=np.vstack([X[:30:3], X[40:50] + 5e-17]))
    for args, dense_max in itertools.product(((), (other,)), (0, 2**22)):
        got_pop, got_keep, got_drop = BoundedDuplicateElimination(dense_max=dense_max).do(pop, *args,
                                                                                          return_indices=True)
        want_pop, want_keep, want_drop = DefaultDuplicateElimination().do(pop, *args, return_indices=True)
        assert got_keep == want_keep and got_drop == want_drop and len(want_drop) > 0
        np.testing.assert_array_equal(got_pop.get("X"), want_pop.get("X"))


class _Sphere(Problem):
    def __init__(self):
        super().__init__(n_var=8, n_obj=1, xl=-1.0, xu=1.0)

    def _evaluate(self, x, out, *args, **kwargs):
        out["F"] = (x ** 2).sum(axis=1, keepdims=True)


class _History(Callback):
    def __init__(self):
        super().__init__()
        self.X = []

    def notify(self, algorithm):
        self.X.append(algorithm.pop.get("X").copy())


def _ga_history(eliminate_duplicates):
    history = _History()
    minimize(_Sphere(), GA(pop_size=16, eliminate_duplicates=eliminate_duplicates), ("n_gen", 20), seed=3,
             callback=history)
    return np.stack(history.X)


@pytest.mark.parametrize("dense_max", [0, 2**22])
def test_ga_history_is_unchanged(dense_max):
    ours, pymoos = _ga_history(BoundedDuplicateElimination(dense_max=dense_max)), _ga_history(True)
    assert ours.shape == (20, 16, 8)
    np.testing.assert_array_equal(ours, pymoos)
    assert not np.array_equal(_ga_history(False), pymoos)  # duplicates do arise here, so elimination matters


@pytest.mark.parametrize("n", [1, 2, 3, 17, 255, 256, 257, 1000, EXACT_CAP])
def test_diversity_is_exact_up_to_the_cap(n):
    X = np.random.default_rng(n).normal(size=(n, 5)) * [1, 2, 3, 0.1, 10]
    want = pdist(X).mean() / np.sqrt(5) if n > 1 else 0.0
    assert population_diversity(X) == pytest.approx(want, rel=1e-12, abs=0.0)


def test_diversity_estimate_for_a_large_population():
    rng = np.random.default_rng(11)
    # clusters of very different spread and size, so a biased or badly sized subset would show
    centres = rng.normal(scale=5.0, size=(6, 32))
    sizes = [3000, 1500, 800, 400, 200, 100]
    X = np.vstack([c + rng.normal(scale=s, size=(k, 32)) for c, s, k in zip(centres, [0.1, 1, 3, 0.5, 8, 2], sizes)])
    X = X[rng.permutation(len(X))]
    exact = pdist(X).mean() / np.sqrt(32)
    state = np.random.get_state()
    estimate = population_diversity(X)
    assert estimate == pytest.approx(exact, rel=0.02)
    assert estimate != pytest.approx(exact, rel=1e-9)  # beyond the cap it really is an estimate
    assert population_diversity(X) == estimate  # deterministic
    after = np.random.get_state()
    # global RNG untouched
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_large_population_in_bounded_memory():
    n, dim, budget = 20_000, 32, 300 * 2**20
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, dim))
    X[rng.choice(n, 200, replace=False)] = X[rng.choice(n, 200, replace=False)]
    n_unique = len(np.unique(X, axis=0))
    pop, off = Population.new(X=X[: n // 2]), Population.new(X=X[n // 2:])

    tracemalloc.start()
    try:
        probe = np.ones(budget // 8 + 1)  # the measurement sees numpy's buffers: pymoo's way would fail it
        assert tracemalloc.get_traced_memory()[1] > budget
        del probe
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        eliminate = BoundedDuplicateElimination()
        kept = eliminate.do(off, eliminate.do(pop))  # offspring against themselves and against the parents
        parents = eliminate.do(pop)
        diversity = population_diversity(X)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert len(parents) + len(kept) == n_unique
    assert diversity == pytest.approx(pdist(X[:3000]).mean() / np.sqrt(dim), rel=0.02)
    assert peak < budget, f"peak extra memory {peak / 2**20:.0f} MiB"
