"""What a pack is asked to run: one `RunSpec` per job, checked before any model is loaded."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from .. import prompts
from ..callbacks import SWEEP_SIZE_ENV
from ..errors import ConfigError
from ..evaluation.evaluate import evaluation_prompt
from ..search import min_pop_size
from .objectives import check_objectives

DEVICES = ("auto", "cpu", "cuda")
# Bytes one individual takes in pymoo (its object, X, F, copies in offspring and survival),
# per latent coordinate and fixed, to refuse populations that cannot fit before they start.
INDIVIDUAL_BYTES_PER_COORD = 80
INDIVIDUAL_BYTES = 4000


@dataclass
class RunSpec:
    """One job: its resolved config and how the sweep named it."""

    cfg: DictConfig
    name: str  # the run's name: the job's overrides
    overrides: list[str] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)
    label: str = ""  # 'job 3/100' in a sweep

    @classmethod
    def of(cls, cfg: DictConfig, name: str, overrides: list[str] = (), choices: dict[str, str] | None = None,
           label: str = "") -> RunSpec:
        """The job of `cfg`, resolved and checked (a bad config raises ConfigError)."""
        resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        validate(resolved)
        if resolved.get("evaluation"):
            evaluation_prompt(resolved)  # the prompt asks for the evaluated class
        return cls(resolved, name, list(overrides), dict(choices or {}), label)

    @classmethod
    def from_hydra(cls, cfg: DictConfig) -> RunSpec:
        """The job Hydra is running now."""
        hydra_cfg = HydraConfig.get()
        choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
        return cls.of(cfg, hydra_cfg.job.override_dirname or "defaults", list(hydra_cfg.overrides.task), choices,
                      job_label(hydra_cfg))

    @property
    def prefix(self) -> str:
        """'job 3/100 ' before a sweep's messages, '' for a single run."""
        return f"{self.label} " if self.label else ""

    @property
    def title(self) -> str:
        """'job 3/100 algo=de,seed=3', or the run name alone."""
        return f"{self.label} {self.name}".strip()


def job_label(hydra_cfg: DictConfig) -> str:
    """'job 3/100' in a sweep, '' for a single run."""
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return ""
    return f"job {hydra_cfg.job.num + 1}/{os.environ.get(SWEEP_SIZE_ENV, '?')}"


def _at_least(cfg: DictConfig, key: str, least: int, note: str = "") -> None:
    """The schema (latentevo/schema.py) has made it an integer; its range is checked here."""
    if cfg[key] < least:
        raise ConfigError(f"{key} must be an integer >= {least}{note}, got {cfg[key]!r}")


def validate(cfg: DictConfig) -> None:
    """Checks that need no model, so that bad input fails before anything is loaded."""
    prompts.of_config(cfg)  # the terms, weights and image prompt
    for key in ("generations", "pop_size", "log_every"):
        _at_least(cfg, key, 1)
    if cfg.batch_size != "auto" and (isinstance(cfg.batch_size, bool) or not isinstance(cfg.batch_size, int)
                                     or cfg.batch_size < 1):
        raise ConfigError(f"batch_size must be auto or an integer >= 1, got {cfg.batch_size!r}")
    _at_least(cfg, "seed", 0)
    if cfg.threads is not None:
        _at_least(cfg, "threads", 1)
    _at_least(cfg, "checkpoint_every", 0, " (0: no checkpoints)")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    algorithm_cls = get_class(cfg.algo._target_)
    needed = min_pop_size(algorithm_cls)
    if cfg.pop_size < needed:
        raise ConfigError(f"pop_size={cfg.pop_size} is too small for {algorithm_cls.__name__}; "
                          f"it needs pop_size >= {needed}")
    check_population_fits(cfg.pop_size, cfg.generator.get("latent_dim"))
    check_objectives(cfg)


def check_population_fits(pop_size: int, latent_dim: int | None) -> None:
    """A population that cannot fit in this machine's memory is refused before it starts."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    needed = pop_size * (INDIVIDUAL_BYTES + INDIVIDUAL_BYTES_PER_COORD * (latent_dim or 512))
    if needed > memory:
        raise ConfigError(f"pop_size={pop_size} needs about {needed / 2**30:.0f} GiB for the search alone, more than "
                          f"this machine's {memory / 2**30:.0f} GiB; lower pop_size")


def run_params(cfg: DictConfig, choices: dict[str, str]) -> dict[str, object]:
    """The flattened resolved config, plus which option of each config group was chosen."""
    flat = pd.json_normalize(OmegaConf.to_container(cfg, resolve=True), sep=".").iloc[0].to_dict()
    return flat | {f"choice.{group}": option for group, option in choices.items()}
