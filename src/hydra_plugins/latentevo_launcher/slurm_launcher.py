"""The Slurm launcher: the packed launcher's packs, each sent to Slurm as one task of a job
array through submitit (`cluster: local` runs the very same path on this machine). Jobs that
already FINISHED are not sent again; a pack that Slurm signals before its time limit (or a
preemption) checkpoints its runs and is requeued by submitit, and goes on where it stopped.

No `from __future__ import annotations` here (see packed_launcher)."""


import copy
import logging
import shutil
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import submitit
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, open_dict

from .packed_launcher import PackedLauncher, by_job_number, execute_pack

log = logging.getLogger(__name__)
#: seconds between two looks at the submitted packs' states
POLL_S = 2.0
CLUSTERS = ("slurm", "local")


@dataclass
class SlurmLauncherConf:
    _target_: str = "hydra_plugins.latentevo_launcher.slurm_launcher.SlurmLauncher"
    #: slurm, or local: submitit's local executor, the same path without Slurm
    cluster: str = "slurm"
    #: most runs in one pack, i.e. in one Slurm task
    pack_size: int = 50
    #: wait for the packs and report each one's end; false: return once they are submitted
    wait: bool = True
    #: submitit's folder: each task's script, pickles and logs (%j: the Slurm job id)
    folder: str = "${hydra.sweep.dir}/.submitit/%j"
    partition: Optional[str] = None
    #: each task's time limit; Slurm signals it signal_delay_s before, to checkpoint and requeue
    timeout_min: int = 60
    signal_delay_s: int = 90
    #: requeues after a time limit before a pack counts as failed (preemptions are not counted)
    max_num_timeout: int = 3
    cpus_per_task: int = 2
    gpus_per_node: int = 0
    mem_gb: float = 8
    #: at most this many of the sweep's tasks at once (null: as many as Slurm gives)
    array_parallelism: Optional[int] = None
    #: more sbatch options, e.g. {account: mygroup, qos: high}
    additional_parameters: dict = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/launcher", name="latentevo_slurm", node=SlurmLauncherConf)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _task_config(sweep_config: DictConfig) -> DictConfig:
    """The job's config as its task sees it (Hydra's own node removed)."""
    task = copy.deepcopy(sweep_config)
    with open_dict(task):
        del task["hydra"]
    return task


def checkpoint_roots(jobs: Sequence[DictConfig]) -> list[str]:
    """Where the jobs' checkpoints go: they must be on a disk that every node reads."""
    from latentevo.resume import checkpoint_root
    from latentevo.tracking import tracking_uri

    return sorted({str(checkpoint_root(job.paths.checkpoints, tracking_uri(job.paths.store))) for job in jobs})


class PackTask(submitit.helpers.Checkpointable):
    """One pack, run by a Slurm task. Slurm's signal before the time limit (or a preemption)
    asks the pack to stop between two generations; once its runs are checkpointed, submitit's
    own handler requeues the task with the same arguments."""

    def __call__(self, number: int, of: int, jobs: Sequence[DictConfig], hydra_context: Any, task_function: Any,
                 singleton_state: dict, checkpoints: Sequence[str]) -> list[JobReturn]:
        from latentevo.errors import LatentevoError
        from latentevo.pipeline import Preempted

        missing = [root for root in checkpoints if not Path(root).is_dir()]
        if missing:
            raise LatentevoError(f"checkpoint directory {missing[0]} is missing on node {socket.gethostname()}: "
                                 "checkpoints must live on a disk every node reads (paths.checkpoints=...)")
        signum = signal.Signals["SIG" + submitit.JobEnvironment.USR_SIG]
        asked = threading.Event()
        requeue = signal.signal(signum, lambda *_: asked.set())
        try:
            return execute_pack(number, of, jobs, hydra_context, task_function, singleton_state, stop=asked.is_set)
        except Preempted:
            # the requeue stops this task's step with SIGTERM: the runs are saved and ended already
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signum, requeue)
            requeue(signum, None)  # submitit: checkpoint(), `scontrol requeue`, exit
            raise


class SlurmLauncher(PackedLauncher):
    def __init__(self, cluster: str = "slurm", pack_size: int = 50, wait: bool = True, folder: str = ".submitit/%j",
                 partition: Optional[str] = None, timeout_min: int = 60, signal_delay_s: int = 90,
                 max_num_timeout: int = 3, cpus_per_task: int = 2, gpus_per_node: int = 0, mem_gb: float = 8,
                 array_parallelism: Optional[int] = None, additional_parameters: Optional[dict] = None) -> None:
        super().__init__(pack_size=pack_size, workers=1)
        self.cluster, self.wait, self.folder, self.max_num_timeout = cluster, wait, folder, max_num_timeout
        self.parameters = dict(
            timeout_min=timeout_min, cpus_per_task=cpus_per_task, gpus_per_node=gpus_per_node, mem_gb=mem_gb,
            tasks_per_node=1, nodes=1, slurm_partition=partition, slurm_signal_delay_s=signal_delay_s,
            slurm_additional_parameters=dict(additional_parameters or {}),
            slurm_array_parallelism=array_parallelism,
        )

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from latentevo.errors import ConfigError

        if self.cluster not in CLUSTERS:
            raise ConfigError(f"hydra.launcher.cluster must be one of {', '.join(CLUSTERS)}, got {self.cluster!r}")
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise ConfigError("hydra/launcher=slurm needs Slurm's sbatch on PATH, and there is none here; "
                              "hydra/launcher=submitit_local runs the same packs on this machine")
        jobs = self.compose_all(job_overrides, initial_job_idx)
        self.sweep_size = len(jobs)
        returns = self._skip_finished(jobs)
        todo = [job for job in jobs if job.hydra.job.num not in returns]
        if todo:
            packs = self.plan(todo, 1)
            log.info(f"Submitting {len(todo)} jobs in {len(packs)} packs to {self.cluster}"
                     + (f" ({len(returns)} already FINISHED)" if returns else ""))
            returns |= self.run_packs(packs)
        return [returns[job.hydra.job.num] for job in jobs]

    def _skip_finished(self, jobs: Sequence[DictConfig]) -> dict[int, JobReturn]:
        """The jobs whose run already FINISHED, as the pack would skip them, so that no Slurm task
        is spent on them."""
        from latentevo.errors import LatentevoError
        from latentevo.identity import finished_run, job_identity
        from latentevo.pipeline import RunSpec
        from latentevo.pipeline.pack import skipped_line
        from latentevo.tracking import open_experiment, tracking_uri

        experiments, skipped = {}, {}
        for job in jobs:
            HydraConfig.instance().set_config(job)
            task = _task_config(job)
            if not task.resume:
                continue
            try:
                spec = RunSpec.of(task, job.hydra.job.override_dirname or "defaults")
            except LatentevoError:  # its pack says why, with the job's name
                continue
            store = (tracking_uri(task.paths.store), task.experiment_name)
            if store not in experiments:
                experiments[store] = open_experiment(task.experiment_name, store[0])
            client, experiment_id = experiments[store]
            done = finished_run(client, experiment_id, job_identity(spec.cfg))
            if done is not None:
                label = f"job {job.hydra.job.num + 1}/{self.sweep_size} "
                print(skipped_line(label, job.hydra.job.override_dirname or "defaults", done.info.run_id))
                skipped[job.hydra.job.num] = JobReturn(
                    overrides=list(job.hydra.overrides.task), cfg=task, hydra_cfg=job, status=JobStatus.COMPLETED,
                    _return_value=done.data.metrics.get("best_cos_sim"))
        return skipped

    def run_packs(self, packs: list[list[DictConfig]]) -> dict[int, JobReturn]:
        from latentevo.errors import ConfigError, LatentevoError

        roots = checkpoint_roots([job for pack in packs for job in pack])
        for root in roots:
            if not Path(root).is_dir():
                configured = any(job.paths.checkpoints for pack in packs for job in pack)
                if configured:
                    raise ConfigError(f"paths.checkpoints {root} does not exist; create it on a disk that every node "
                                      "reads (the runs' checkpoints go there)")
                Path(root).mkdir(parents=True)
        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster,
                                         **{f"{c}_max_num_timeout": self.max_num_timeout for c in CLUSTERS})
        name = str(self.config.hydra.job.name)
        executor.update_parameters(name=name, **{k: v for k, v in self.parameters.items() if v is not None})
        state, task = Singleton.get_state(), PackTask()
        try:
            with executor.batch():
                submitted = [executor.submit(task, n, len(packs), pack, self.hydra_context, self.task_function, state,
                                             roots) for n, pack in enumerate(packs, 1)]
        except Exception as err:  # sbatch's refusal: a partition, account or limit it does not know
            reason = _last_line(str(err).split("Error stream:")[-1]) or type(err).__name__
            raise LatentevoError(f"{self.cluster} refused the sweep's {len(packs)} packs: {reason}") from None
        ids = ", ".join(job.job_id for job in submitted)
        print(f"submitted {len(packs)} pack{'s' if len(packs) > 1 else ''} to {self.cluster} as job"
              f"{'s' if len(packs) > 1 else ''} {ids}; logs in {submitted[0].paths.folder.parent}", flush=True)
        if not self.wait:
            # submitted is as far as this launch goes (Hydra's sweeper reads each return value,
            # and an UNKNOWN one raises)
            return {job.hydra.job.num: JobReturn(overrides=list(job.hydra.overrides.task), cfg=_task_config(job),
                                                 hydra_cfg=job, status=JobStatus.COMPLETED, _return_value=None)
                    for pack in packs for job in pack}
        return by_job_number(packs, self._wait(packs, submitted))

    def _wait(self, packs: list[list[DictConfig]], submitted: list[submitit.Job]) -> list[list[JobReturn]]:
        """Each pack's JobReturns, reported as each pack ends; a pack that ends without its
        results (cancelled, killed, out of time too often) fails its jobs with one line."""
        results: dict[int, list[JobReturn]] = {}
        started = time.monotonic()
        try:
            while True:
                for n, job in enumerate(submitted):
                    if n not in results and job.done():
                        results[n] = self._ended(n, len(submitted), packs[n], job, time.monotonic() - started)
                if len(results) == len(submitted):
                    break
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            print(f"stopped waiting; the packs go on in {self.cluster} "
                  f"(scancel {' '.join(j.job_id for j in submitted)} "
                  "stops them, and the same command resumes them)", flush=True)
            raise
        return [results[n] for n in range(len(submitted))]

    def _ended(self, n: int, of: int, pack: list[DictConfig], job: submitit.Job, seconds: float) -> list[JobReturn]:
        from latentevo.errors import LatentevoError

        where = f"pack {n + 1}/{of} (job {job.job_id})"
        try:
            returns = job.result()
        except Exception as err:
            state = job.state
            reason = _last_line(str(err)).split(": ", 1)[-1] if "LatentevoError" in str(err) else ""
            error = LatentevoError(f"{where} ended {state}{': ' + reason if reason else ''}; its runs are resumable: "
                                   "run the same command again")
            print(f"error: {error}", flush=True)
            return [JobReturn(overrides=list(c.hydra.overrides.task), cfg=_task_config(c), hydra_cfg=c,
                              status=JobStatus.FAILED, _return_value=error) for c in pack]
        failed = sum(r.status == JobStatus.FAILED for r in returns)
        print(f"{where} ended after {seconds / 60:.1f} min: {len(returns) - failed} runs done, {failed} failed",
              flush=True)
        for config, ret in zip(pack, returns):
            label = (f"job {config.hydra.job.num + 1}/{self.sweep_size} "
                     f"({config.hydra.job.override_dirname or 'defaults'})")
            print(f"{label} failed: {ret._return_value}" if ret.status == JobStatus.FAILED
                  else f"{label} best cos_sim {ret._return_value:.4f}", flush=True)
        return returns
