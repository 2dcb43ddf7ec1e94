"""The objectives a run's search minimises: a list of named objectives, each giving one or more
columns computed from the fitness pass's scores of one run's images, with the hypervolume
reference point's coordinate for each column (the worst value that still counts).

- `clip`: one column, -cos_sim, the run's fitness (the weighted sum of its prompt's terms).
- `terms`: one column per prompt term (the image prompt's term last), -weight * cos_sim of that
  term: -cos_sim for a term of weight 1, +cos_sim for a penalty of weight 1. The columns sum to
  -fitness.
- `realness`: CLIP-GLaSS's relu(1 - D(x)), D the realness model's output in [0, 1].

`clip` or `terms` comes first (exactly one of them): the leading columns give the fitness back.
A single objective is given to the search as the cos_sim itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hydra.utils import get_class
from omegaconf import DictConfig

from .. import prompts
from ..errors import ConfigError
from ..search import multi_objective
from .models import Scores


@dataclass(frozen=True)
class Objective:
    #: (scores, the prompt's term weights) -> (n, k) values to minimise
    columns: Callable[[Scores, np.ndarray], np.ndarray]
    #: the term weights -> the k columns' hypervolume reference coordinates
    reference: Callable[[np.ndarray], np.ndarray]
    #: the term weights -> the k columns' names
    names: Callable[[np.ndarray], list[str]]
    needs: str | None = None  # the config group whose model computes it


def _one(name: str, value: float) -> tuple[Callable, Callable]:
    return (lambda w: np.array([value])), (lambda w: [name])


OBJECTIVES = {
    # the reversed cosine similarity of the fitness; up to 0 (an image unrelated to the prompt)
    "clip": Objective(lambda s, w: -s.cos_sim[:, None], *_one("clip", 0.0)),
    # one reversed (a penalty's: plain) weighted cos_sim per term; a positive term's up to 0
    # (cos_sim 0), a penalty's up to its weight (cos_sim 1: every image counts)
    "terms": Objective(lambda s, w: -s.terms * w, lambda w: np.maximum(0.0, -w),
                       lambda w: [f"term{i}" for i in range(len(w))]),
    # CLIP-GLaSS's realness objective relu(1 - D(x)), D in [0, 1]; up to 1 (judged certainly fake)
    "realness": Objective(lambda s, w: np.maximum(0.0, 1.0 - s.realness)[:, None], *_one("realness", 1.0),
                          needs="realness"),
}
#: the objectives that give the fitness back, one of which comes first
FITNESS = ("clip", "terms")
#: what a run optimises when `objectives` is null: its algorithm's kind
DEFAULT_OBJECTIVES = {False: ["clip"], True: ["clip", "realness"]}


def objectives_of(cfg: DictConfig) -> list[str]:
    """The run's objectives: `objectives`, or when null its algorithm's (left null in the config,
    so that the job's identity is the config's as composed)."""
    if cfg.objectives is not None:
        return list(cfg.objectives)
    return list(DEFAULT_OBJECTIVES[multi_objective(get_class(cfg.algo._target_))])


@dataclass(frozen=True)
class Columns:
    """A run's objectives as the columns the search minimises."""

    objectives: list[str]
    weights: np.ndarray  # the prompt's term weights (penalties negative)

    @classmethod
    def of(cls, cfg: DictConfig) -> Columns:
        return cls(objectives_of(cfg), np.array(prompts.of_config(cfg).weights, dtype=float))

    @property
    def names(self) -> list[str]:
        """One per column: clip, term0, term1, ..., realness."""
        return [name for objective in self.objectives for name in OBJECTIVES[objective].names(self.weights)]

    def values(self, scores: Scores) -> np.ndarray:
        """(n,) cos_sims (the fitness) for a single objective; (n, columns) values to minimise for
        several."""
        if len(self.names) == 1:
            return scores.cos_sim
        return np.concatenate([OBJECTIVES[o].columns(scores, self.weights) for o in self.objectives], axis=1)

    def reference(self) -> np.ndarray:
        return np.concatenate([OBJECTIVES[o].reference(self.weights) for o in self.objectives])

    def fitness(self, f: np.ndarray) -> np.ndarray:
        """(P, columns) values minimised -> (P,) the fitness (the weighted sum of the terms'
        cos_sims): minus the sum of the leading columns, clip's one or the terms' all."""
        leading = len(OBJECTIVES[self.objectives[0]].names(self.weights))
        return -f[:, :leading].sum(1)


def check_objectives(cfg: DictConfig) -> None:
    """Known names, clip or terms first and not both, none twice, their models configured, as
    many columns as the algorithm optimises, and a pick weight for each (or null: equal ones)."""
    names = objectives_of(cfg)
    unknown = [n for n in names if n not in OBJECTIVES]
    fitness = [n for n in names if n in FITNESS]
    if unknown or not names or names[0] not in FITNESS or len(fitness) > 1 or len(set(names)) < len(names):
        raise ConfigError(f"objectives must be distinct names of {', '.join(OBJECTIVES)}, clip or terms first "
                          f"(not both); got {names}")
    for name in names:
        needs = OBJECTIVES[name].needs
        if needs and not cfg.get(needs):
            raise ConfigError(f"objective {name} needs a {needs} model: {needs}=dcgan_shapes, facegen or stylegan2 "
                              f"(conf/{needs}/)")
    algorithm = get_class(cfg.algo._target_).__name__
    columns = Columns.of(cfg).names
    if multi_objective(get_class(cfg.algo._target_)):
        if len(columns) < 2:
            per_term = (f"; objectives=[terms] is one per prompt term, and the prompt has {len(columns)}"
                        if "terms" in names else "")
            raise ConfigError(f"{algorithm} needs two or more objectives, e.g. objectives=[clip,realness]{per_term}; "
                              "for cos_sim alone use a single-objective algorithm (algo=ga)")
        weights = cfg.algo.get("pick_weights")
        if weights is not None and (len(weights) != len(columns) or min(weights) < 0 or not sum(weights) > 0):
            raise ConfigError(f"algo.pick_weights must be {len(columns)} non-negative weights, one per objective "
                              f"({', '.join(columns)}), not all 0, or null for equal ones; got {list(weights)}")
    elif len(names) > 1 or "terms" in names:
        raise ConfigError(f"{algorithm} optimises one objective; objectives={names} needs a multi-objective "
                          "algorithm (algo=nsga2)")
