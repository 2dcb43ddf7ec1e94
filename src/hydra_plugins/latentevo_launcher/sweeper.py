"""Hydra's basic sweeper, less its trial composition of every job when the launcher composes
every job itself before it runs any (the packed and Slurm launchers): composing a job takes a
tenth of a second or more, so the trial doubled the start of a 100-job sweep.

No `from __future__ import annotations` here (see packed_launcher)."""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore


@dataclass
class PackedSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.latentevo_launcher.sweeper.PackedSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="latentevo_basic", node=PackedSweeperConf)


class PackedSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if not getattr(self.launcher, "composes_up_front", False):
            super().validate_batch_is_legal(batch)
