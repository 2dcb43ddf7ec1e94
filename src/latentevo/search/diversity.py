"""Population diversity in bounded memory and time."""

import numpy as np
from scipy.spatial.distance import cdist

EXACT_CAP = 4096  # rows up to which the diversity is exact; above it, a subset of this many rows
_BLOCK = 256  # rows per distance block: blocks are _BLOCK x n float64 (8 MiB at n = 4096)


def population_diversity(latents: np.ndarray) -> float:
    """Mean pairwise Euclidean distance of the rows of `latents`, divided by sqrt(dim); 0.0 below 2 rows.

    Up to `EXACT_CAP` (4096) rows it equals `pdist(latents).mean() / sqrt(dim)`, summed block by block
    so that memory stays O(_BLOCK x rows) instead of O(rows^2). Above the cap it is estimated from
    `EXACT_CAP` rows drawn without replacement by `np.random.default_rng(0)` (a private generator, so
    numpy's global random state and the search's own streams are untouched): an unbiased estimate,
    deterministic for a given population, whose cost does not grow with the population.
    """
    X = np.asarray(latents, dtype=float)
    n, dim = X.shape
    if n < 2:
        return 0.0
    if n > EXACT_CAP:
        X = X[np.sort(np.random.default_rng(0).choice(n, EXACT_CAP, replace=False))]
        n = EXACT_CAP
    total = 0.0
    for s in range(0, n - 1, _BLOCK):
        D = cdist(X[s:s + _BLOCK], X[s + 1:])  # row s + k against the rows after it: D[k, k:]
        total += np.triu(D).sum()
    return float(total / (n * (n - 1) / 2) / np.sqrt(dim))
