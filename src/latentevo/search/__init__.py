"""Evolutionary search over a box of latent vectors with pymoo.

This layer sees only numpy arrays and an `evaluate(latents) -> cos_sim` function; it knows
nothing about generators, scorers or tracking.
"""

from .loop import Generation, evolve, min_pop_size
from .problem import FitnessError, LatentProblem, PriorSampling

__all__ = ["FitnessError", "Generation", "LatentProblem", "PriorSampling", "evolve", "min_pop_size"]
