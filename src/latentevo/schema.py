"""The typed schema of run.py's top-level keys and of the `paths` group every entry point shares
(Hydra structured configs): Hydra itself rejects a value of the wrong type (`seed=abc`,
`resume=maybe`) before anything is loaded. What types cannot say (ranges, the algorithm's
smallest population) `pipeline.spec.validate` checks."""

from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class PathsSchema:
    """Types only: the values, and what each means, are conf/paths/default.yaml's."""

    store: Optional[str] = MISSING
    checkpoints: Optional[str] = MISSING
    weights: Optional[str] = MISSING
    trained: str = MISSING
    runs: str = MISSING
    sweeps: str = MISSING
    cache: str = MISSING


@dataclass
class RunSchema:
    """Types only: the values are conf/config.yaml's."""

    prompt: Optional[str] = MISSING
    image_prompt: Optional[str] = MISSING
    image_prompt_weight: float = MISSING
    seed: int = MISSING
    generations: int = MISSING
    pop_size: int = MISSING
    log_every: int = MISSING
    experiment_name: str = MISSING
    device: str = MISSING
    threads: Optional[int] = MISSING
    batch_size: Any = MISSING  # "auto" or an integer: OmegaConf has no union of the two
    checkpoint_every: int = MISSING
    resume: bool = MISSING
    # null: the algorithm's (pipeline/objectives.py)
    objectives: Optional[list[str]] = MISSING
    # the config groups: each option's own keys
    generator: Any = MISSING
    clip: Any = MISSING
    algo: Any = MISSING
    augment: Any = MISSING
    evaluation: Any = None
    realness: Any = None
    paths: PathsSchema = MISSING


ConfigStore.instance().store(name="run_schema", node=RunSchema)
# each option of conf/paths/ extends it (`defaults: [paths_schema]`), for train.py and pixel_ga.py too
ConfigStore.instance().store(group="paths", name="paths_schema", node=PathsSchema)
