"""A run's prompt terms inside the run: their weighted sum is the fitness the search is told, and
each term's cos_sim of the best image is logged as `term<i>_cos_sim`."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..prompts import Prompt
from ..search import Generation
from .models import Scores


def combine(term_sims: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, T) cos_sims to the terms -> (n,) fitness, their weighted sum (a plain prompt's one
    term of weight 1: its cos_sim, exactly)."""
    return term_sims @ weights


def combine_scores(scores: Scores, weights: np.ndarray) -> Scores:
    """The models' per-term scores as the run's: `cos_sim` its fitness, `gradient` (n, latent_dim)
    the fitness's."""
    gradient = None if scores.gradient is None else np.einsum("ntd,t->nd", scores.gradient, weights)
    return dataclasses.replace(scores, cos_sim=combine(scores.terms, weights), gradient=gradient)


def term_metric(i: int) -> str:
    return f"term{i}_cos_sim"


def term_params(prompt: Prompt) -> dict[str, str]:
    """`term0`: 'a red star:1', `term1`: '-a red background:1', ... (the sign and weight shown)."""
    return {f"term{i}": term.label for i, term in enumerate(prompt.terms)}


def prompt_text(prompt: Prompt) -> str:
    """Which metric is which term, one line each."""
    lines = [f"{term_metric(i)}\tweight {t.weight:g}\t{t.text if t.image is None else 'image ' + t.image}"
             for i, t in enumerate(prompt.terms)]
    return "fitness (best_cos_sim) = sum of weight * cos_sim over the terms\n" + "\n".join(lines) + "\n"


class BestTerms:
    """The term cos_sims of the latents a run still holds (its population and its best so far),
    keyed by the latent's bytes: the best individual may come from any earlier generation, and
    the search keeps only its combined fitness."""

    def __init__(self, known: dict[bytes, np.ndarray]):
        self.known = known
        self.best: np.ndarray | None = None

    @classmethod
    def restore(cls, state: dict[bytes, np.ndarray] | None) -> BestTerms:
        return cls(dict(state or {}))

    def state(self) -> dict[bytes, Any]:
        return self.known

    def update(self, asked: np.ndarray, term_sims: np.ndarray, gen: Generation) -> None:
        known = self.known | {x.tobytes(): t for x, t in zip(asked, term_sims)}
        held = [x.tobytes() for x in (*gen.latents, gen.best_latent)]
        self.known = {key: known[key] for key in held if key in known}
        self.best = known.get(gen.best_latent.tobytes())

    def metrics(self) -> dict[str, float]:
        """Each term's cos_sim of the best image (none before the best is known)."""
        return {} if self.best is None else {term_metric(i): float(s) for i, s in enumerate(self.best)}
