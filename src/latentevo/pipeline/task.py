"""The Hydra task of `run.py`. Alone (`python run.py`, or one job of the joblib launcher) a job
runs as a pack of one; while the packed launcher is enrolling a pack's jobs, it is handed over."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from tqdm import tqdm

from ..errors import LatentevoError
from .pack import run_pack
from .spec import RunSpec, job_label

_enrolled: ContextVar[list[RunSpec] | None] = ContextVar("enrolled", default=None)


@contextlib.contextmanager
def enrolling() -> Iterator[list[RunSpec]]:
    """Inside, the task only checks each job and adds it to the list yielded, to run as a pack."""
    specs: list[RunSpec] = []
    token = _enrolled.set(specs)
    try:
        yield specs
    finally:
        _enrolled.reset(token)


def run_job(cfg: DictConfig) -> float | RunSpec:
    """Runs the job and returns its best cos_sim (enrolling: returns its spec). A failed run
    (marked FAILED) raises its error: `cli.run_task` makes a single run's one line of it, and
    in a sweep it fails this job and the sweep goes on."""
    spec = _checked(cfg)
    enrolled = _enrolled.get()
    if enrolled is not None:
        enrolled.append(spec)
        return spec
    outcome = run_pack([spec])[0]
    if outcome.error is not None:
        raise outcome.error
    return outcome.best_cos_sim


def _checked(cfg: DictConfig) -> RunSpec:
    try:
        return RunSpec.from_hydra(cfg)
    except LatentevoError as err:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            tqdm.write(f"{job_label(hydra_cfg)} ({hydra_cfg.job.override_dirname}) failed: {err}", file=sys.stderr)
        raise
