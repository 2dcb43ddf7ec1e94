"""The objectives a run's search minimises: a list of named columns, each computed from the
fitness pass's scores of one run's images, with the hypervolume reference point's coordinate
for it (the worst value that still counts). `clip` is always first: its column is -cos_sim, the
run's fitness. A single objective is given to the search as the cos_sim itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hydra.utils import get_class
from omegaconf import DictConfig

from ..errors import ConfigError
from ..search import multi_objective
from .models import Scores


@dataclass(frozen=True)
class Objective:
    column: Callable[[Scores], np.ndarray]  # values to minimise, one per image
    reference: float  # the hypervolume reference point's coordinate
    needs: str | None = None  # the config group whose model computes it


OBJECTIVES = {
    # the reversed cosine similarity; up to 0 (an image unrelated to the prompt)
    "clip": Objective(lambda s: -s.cos_sim, 0.0),
    # CLIP-GLaSS's realness objective relu(1 - D(x)), D in [0, 1]; up to 1 (judged certainly fake)
    "realness": Objective(lambda s: np.maximum(0.0, 1.0 - s.realness), 1.0, "realness"),
}
#: what a run optimises when `objectives` is null: its algorithm's kind
DEFAULT_OBJECTIVES = {False: ["clip"], True: ["clip", "realness"]}


def objectives_of(cfg: DictConfig) -> list[str]:
    """The run's objectives: `objectives`, or when null its algorithm's (left null in the config,
    so that the job's identity is the config's as composed)."""
    if cfg.objectives is not None:
        return list(cfg.objectives)
    return list(DEFAULT_OBJECTIVES[multi_objective(get_class(cfg.algo._target_))])


def check_objectives(cfg: DictConfig) -> None:
    """Known names, clip first, none twice, their models configured, as many as the algorithm
    optimises, and a pick weight for each."""
    names = objectives_of(cfg)
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown or not names or names[0] != "clip" or len(set(names)) < len(names):
        raise ConfigError(f"objectives must be distinct names of {', '.join(OBJECTIVES)}, clip first; "
                          f"got {names}")
    for name in names:
        needs = OBJECTIVES[name].needs
        if needs and not cfg.get(needs):
            raise ConfigError(f"objective {name} needs a {needs} model: {needs}=dcgan_shapes, facegen or stylegan2 "
                              f"(conf/{needs}/)")
    algorithm = get_class(cfg.algo._target_).__name__
    if multi_objective(get_class(cfg.algo._target_)):
        if len(names) < 2:
            raise ConfigError(f"{algorithm} needs two or more objectives, e.g. objectives=[clip,realness]; "
                              "for cos_sim alone use a single-objective algorithm (algo=ga)")
        weights = cfg.algo.get("pick_weights")
        if weights is not None and (len(weights) != len(names) or min(weights) < 0 or not sum(weights) > 0):
            raise ConfigError(f"algo.pick_weights must be {len(names)} non-negative weights, one per objective "
                              f"({', '.join(names)}), not all 0; got {list(weights)}")
    elif len(names) > 1:
        raise ConfigError(f"{algorithm} optimises one objective; objectives={names} needs a multi-objective "
                          "algorithm (algo=nsga2)")


def objective_values(names: list[str], scores: Scores) -> np.ndarray:
    """(n,) cos_sims for a single objective; (n, len(names)) values to minimise for several."""
    if len(names) == 1:
        return scores.cos_sim
    return np.stack([OBJECTIVES[name].column(scores) for name in names], axis=1)


def reference_point(names: list[str]) -> np.ndarray:
    return np.array([OBJECTIVES[name].reference for name in names])
