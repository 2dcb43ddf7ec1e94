"""The packed launcher: composes every job of a sweep, groups the jobs that share models into
packs (`latentevo.pipeline`), splits them so that every core (or GPU) has one, and runs each pack
in a worker process, or in this process when there is one pack.

No `from __future__ import annotations` here: Hydra scans plugin modules without registering
them in sys.modules, where dataclasses cannot resolve string annotations."""


import contextlib
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


@dataclass
class PackedLauncherConf:
    _target_: str = "hydra_plugins.latentevo_launcher.packed_launcher.PackedLauncher"
    #: most runs in one pack
    pack_size: int = 100
    #: packs run side by side; null: one per CPU core, or one per GPU when the runs use CUDA
    workers: Optional[int] = None


ConfigStore.instance().store(group="hydra/launcher", name="latentevo_packed", node=PackedLauncherConf)


def plan_packs(keys: Sequence[str], pack_size: int, workers: int) -> list[list[int]]:
    """Positions of the jobs in each pack. Jobs of one key share a pack; a key's jobs are split
    into as many packs as its share of the workers (at least one, and so that no pack exceeds
    `pack_size`), dealt out in turn so that each pack gets a mix of the sweep."""
    groups: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key, []).append(position)
    packs = []
    for members in groups.values():
        count = max(math.ceil(len(members) / pack_size), round(workers * len(members) / len(keys)), 1)
        count = min(count, len(members))
        packs += [members[i::count] for i in range(count)]
    return packs


#: a GPU driver's files (NVIDIA's, WSL's, AMD's): without any, torch would find no GPU either,
#: and the launching process need not load torch to know it
GPU_DRIVER_FILES = ("/dev/nvidiactl", "/dev/dxg", "/dev/kfd")


def default_workers(config: DictConfig) -> int:
    if config.device != "cpu" and any(os.path.exists(path) for path in GPU_DRIVER_FILES):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count()
    return len(os.sched_getaffinity(0))


def load_pipeline() -> None:
    """A worker's first task: the pipeline's libraries (torch, MLflow, pymoo) loaded."""
    import latentevo.pipeline.pack  # noqa: F401


def start_workers(workers: int) -> None:
    from joblib import Parallel, delayed

    # a worker that cannot load the pipeline fails its pack too, which reports why
    with contextlib.suppress(Exception):
        Parallel(n_jobs=workers, backend="loky")(delayed(load_pipeline)() for _ in range(workers))


@contextlib.contextmanager
def warming(workers: int) -> Iterator[None]:
    """Inside, `workers` worker processes start and load the pipeline while this process goes on
    (composing the jobs' configs): on a machine of 2 cores their start-up then overlaps the
    composition rather than following it. The packs then run in the same workers (joblib reuses
    its loky executor)."""
    if workers < 2:  # one pack runs in this process
        yield
        return
    thread = threading.Thread(target=start_workers, args=(workers,), daemon=True)
    thread.start()
    yield  # a bad override raises here, and the sweep ends without waiting for the workers
    thread.join()


def execute_pack(number: int, of: int, jobs: Sequence[DictConfig], hydra_context: HydraContext,
                 task_function: TaskFunction, singleton_state: Optional[dict],
                 stop: Optional[Callable[[], bool]] = None) -> list[JobReturn]:
    """Hydra's `run_job` for each job of the pack (its output directory, saved config and
    callbacks) with the task enrolling it, then the pack itself; one JobReturn per job.
    `stop` suspends the pack between generations (`latentevo.pipeline.Preempted`)."""
    from latentevo.pipeline import RunSpec, enrolling, run_pack

    if singleton_state is not None:  # in a worker process
        import torch

        setup_globals()
        Singleton.set_state(singleton_state)
        if torch.cuda.device_count() > 1:  # one pack per GPU
            torch.cuda.set_device((number - 1) % torch.cuda.device_count())
    returns = []
    with enrolling():
        for sweep_config in jobs:
            returns.append(run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))
    enrolled = [r for r in returns if r.status == JobStatus.COMPLETED and isinstance(r.return_value, RunSpec)]
    outcomes = run_pack([r.return_value for r in enrolled], title=f"pack {number}/{of}", position=number - 1, stop=stop)
    for ret, outcome in zip(enrolled, outcomes):
        failed = outcome.error is not None
        ret.status = JobStatus.FAILED if failed else JobStatus.COMPLETED
        ret.return_value = outcome.error if failed else outcome.best_cos_sim
    return returns


def by_job_number(packs: Sequence[Sequence[DictConfig]],
                  by_pack: Sequence[Sequence[JobReturn]]) -> dict[int, JobReturn]:
    return {job.hydra.job.num: ret for pack, rets in zip(packs, by_pack) for job, ret in zip(pack, rets)}


class PackedLauncher(Launcher):
    #: every job's config is composed in `launch` before any job runs: a bad override fails the
    #: sweep there, so the sweeper need not compose each job beforehand (sweeper.py)
    composes_up_front = True

    def __init__(self, pack_size: int = 100, workers: Optional[int] = None) -> None:
        self.pack_size, self.workers = pack_size, workers
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        workers = self.workers or default_workers(self.config)
        with warming(min(workers, len(job_overrides))):
            jobs = self.compose_all(job_overrides, initial_job_idx)
        packs = self.plan(jobs, workers)
        log.info(f"Launching {len(jobs)} jobs in {len(packs)} packs, {min(workers, len(packs))} at a time")
        returns = self.run_packs(packs)
        return [returns[job.hydra.job.num] for job in jobs]

    def compose_all(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[DictConfig]:
        from latentevo.errors import ConfigError

        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        if isinstance(self.pack_size, bool) or not isinstance(self.pack_size, int) or self.pack_size < 1:
            raise ConfigError(f"hydra.launcher.pack_size must be an integer >= 1, got {self.pack_size!r}")
        return [self._compose(initial_job_idx + i, overrides) for i, overrides in enumerate(job_overrides)]

    def plan(self, jobs: Sequence[DictConfig], workers: int) -> list[list[DictConfig]]:
        """The jobs in packs, each pack's jobs logged."""
        from latentevo.pipeline import pack_key

        keys = [pack_key(job) for job in jobs]
        packs = [[jobs[p] for p in pack] for pack in plan_packs(keys, self.pack_size, workers)]
        for number, pack in enumerate(packs, 1):
            log.info(f"\tpack {number}: " + ", ".join(job.hydra.job.override_dirname or "defaults" for job in pack))
        return packs

    def run_packs(self, packs: list[list[DictConfig]]) -> dict[int, JobReturn]:
        """Each pack here, or side by side in worker processes; the JobReturns by job number."""
        if len(packs) == 1:
            by_pack = [execute_pack(1, 1, packs[0], self.hydra_context, self.task_function, None)]
        else:
            from joblib import Parallel, delayed

            state = Singleton.get_state()
            workers = self.workers or default_workers(self.config)
            by_pack = Parallel(n_jobs=min(workers, len(packs)), backend="loky")(
                delayed(execute_pack)(n, len(packs), pack, self.hydra_context, self.task_function, state)
                for n, pack in enumerate(packs, 1))
        return by_job_number(packs, by_pack)

    def _compose(self, idx: int, overrides: Sequence[str]) -> DictConfig:
        """The job's whole config, as Hydra's basic launcher composes it."""
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
            sweep_config.hydra.job.num = idx
        return sweep_config
