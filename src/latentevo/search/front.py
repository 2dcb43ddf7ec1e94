"""A multi-objective population's non-dominated front, the one point of it a run reports (by
pymoo's pseudo-weights) and its hypervolume."""

from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.mcdm.pseudo_weights import PseudoWeights
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def non_dominated(f: np.ndarray) -> np.ndarray:
    """Indices of the rows of f (to minimise) that no other row dominates, in row order."""
    return np.sort(NonDominatedSorting().do(f, only_non_dominated_front=True))


def pick(f: np.ndarray, weights: np.ndarray) -> int:
    """The row of a front f whose pseudo-weights (each objective's normalised distance from its
    worst value on the front) are nearest `weights`. A front of identical points has no
    pseudo-weights (0/0): its first point is as good as any."""
    if len(f) == 1:
        return 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return int(PseudoWeights(np.asarray(weights, dtype=float)).do(f))


def hypervolume(f: np.ndarray, reference: np.ndarray) -> float:
    """The volume that f's points dominate up to `reference` (points not better than it in every
    objective add nothing)."""
    return float(HV(ref_point=np.asarray(reference, dtype=float)).do(f))
