"""Hydra callbacks: the sweep's preparation in the launching process, and each job's signal
handling in the process that runs it."""

from __future__ import annotations

import os

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .cli import fail, terminate_as_interrupt
from .errors import LatentevoError
from .tracking import open_experiment, tracking_uri

#: how many jobs the current sweep has, for the jobs' progress bars ("job 3/100")
SWEEP_SIZE_ENV = "LATENTEVO_SWEEP_SIZE"


def sweep_size(config: DictConfig) -> int:
    """Jobs that the basic sweeper expands this sweep's overrides and sweeper params into."""
    params = config.hydra.sweeper.get("params") or {}
    overrides = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    return sum(len(batch) for batch in BasicSweeper.split_arguments(parsed, None))


class PrepareSweep(Callback):
    """Creates the tracking store and the experiment up front: parallel jobs creating them at
    once race on SQLite schema migration and on the experiment's name."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            open_experiment(config.experiment_name, tracking_uri(config.paths.store))
        except LatentevoError as err:
            # Hydra turns a callback's exceptions into warnings and would start every job.
            fail(str(err))
        # Worker processes inherit the environment of the launcher.
        os.environ[SWEEP_SIZE_ENV] = str(sweep_size(config))


class HandleSigterm(Callback):
    """SIGTERM ends a job as Ctrl-C does (its run KILLED), also in a sweep's worker processes."""

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        terminate_as_interrupt()
