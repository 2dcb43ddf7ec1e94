"""Evolutionary search over a box of latent vectors with pymoo.

This layer sees only numpy arrays and an `evaluate(latents) -> cos_sim` function (and, for
gradient-based search, its gradient); it knows nothing about generators, scorers or tracking.
"""

from .adam import Adam
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .diversity import population_diversity
from .duplicates import BoundedDuplicateElimination
from .front import hypervolume, non_dominated
from .loop import (
                   Generation,
                   evolve,
                   min_pop_size,
                   multi_objective,
                   needs_gradient,
                   run_on,
                   state_is_picklable,
                   tell,
                   to_evaluate,
)
from .problem import FitnessError, GivenFitness, LatentProblem, PriorSampling

__all__ = ["Adam", "BoundedDuplicateElimination", "CheckpointError", "FitnessError", "Generation", "GivenFitness",
           "LatentProblem", "PriorSampling", "evolve", "hypervolume", "load_checkpoint", "min_pop_size",
           "multi_objective", "needs_gradient", "non_dominated", "population_diversity", "run_on", "save_checkpoint",
           "state_is_picklable", "tell", "to_evaluate"]
