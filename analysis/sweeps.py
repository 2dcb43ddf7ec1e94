"""Which jobs of an experiment's sweep (conf/experiment/<name>.yaml plus overrides) have no
finished run in the store yet, and running just those."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import groupby
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from latentevo.paths import PROJECT_DIR

from .load import IDENTITY, client_for, run_table, search_finished

CONF_DIR = PROJECT_DIR / "conf"


def _parse(overrides: list[str]):
    return OverridesParser.create().parse_overrides(overrides)


def _compose(name: str, overrides: list[str]) -> DictConfig:
    """The experiment's config with the overrides that are not sweeps (compose takes no sweeps)."""
    fixed = [o.input_line for o in _parse(overrides) if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[f"experiment={name}", *fixed], return_hydra_config=True)


def sweep_jobs(name: str, overrides: list[str] = ()) -> tuple[DictConfig, list[list[str]]]:
    """The experiment's config and each job's overrides, expanded as Hydra's basic sweeper does
    (the command line's overrides after the experiment's sweep params)."""
    cfg = _compose(name, list(overrides))
    params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.get("params") or {}).items()]
    return cfg, BasicSweeper.split_arguments(_parse([*params, *overrides]), None)[0]


def job_identity(cfg: DictConfig, job: list[str]) -> tuple[str, ...]:
    """The job's values of the identity params (analysis.load.IDENTITY), as MLflow stores them."""
    groups = set(cfg.hydra.runtime.choices)
    values = {"choice.algo": cfg.hydra.runtime.choices.algo, "choice.generator": cfg.hydra.runtime.choices.generator}
    values |= {key: str(cfg[key]) for key in IDENTITY if not key.startswith("choice.")}
    for override in _parse(job):
        key = override.key_or_group
        values[f"choice.{key}" if key in groups else key] = str(override.value())
    return tuple(values[key] for key in IDENTITY)


def missing_jobs(name: str, overrides: list[str] = (), uri: str | None = None) -> list[list[str]]:
    """The jobs of the sweep with no finished run of the same identity in the store."""
    cfg, jobs = sweep_jobs(name, overrides)
    done = run_table(search_finished(client_for(uri)[0], cfg.experiment_name))
    done_ids = {tuple(str(v) for v in row) for row in done[list(IDENTITY.values())].itertuples(index=False)}
    return [job for job in jobs if job_identity(cfg, job) not in done_ids]


def run_missing(name: str, overrides: list[str] = (), uri: str | None = None, sweep_dir: Path | None = None) -> int:
    """Runs the missing jobs: the whole sweep in one `run.py -m` when none has run yet, else one
    per combination of everything but the seed, so an interrupted sweep resumes without re-running
    its finished jobs. Hydra's job folders go under `sweep_dir` if given (else Hydra's default,
    multirun/). Returns how many jobs ran."""
    missing = missing_jobs(name, overrides, uri)
    if len(missing) == len(sweep_jobs(name, overrides)[1]):  # nothing ran yet
        commands = [list(overrides)]
    else:
        commands = [rest + _seed_sweep(list(group)) for rest, group in groupby(sorted(missing, key=_without_seed),
                                                                               key=_without_seed)]
    env = os.environ | ({"MLFLOW_TRACKING_URI": uri} if uri else {})
    for i, args in enumerate(commands if missing else []):
        folder = [f"hydra.sweep.dir={sweep_dir.resolve() / f'{name}-{i}'}"] if sweep_dir else []
        command = [sys.executable, "run.py", "-m", f"experiment={name}", *args, *folder]
        print(f"{name}: running missing jobs: {' '.join(command[3:])}", flush=True)
        subprocess.run(command, cwd=PROJECT_DIR, env=env, check=True)
    return len(missing)


def _without_seed(job: list[str]) -> list[str]:
    return [o for o in job if not o.startswith("seed=")]


def _seed_sweep(jobs: list[list[str]]) -> list[str]:
    """One seed=a,b,c override for jobs that differ only in their seed."""
    seeds = [o.removeprefix("seed=") for job in jobs for o in job if o.startswith("seed=")]
    return [f"seed={','.join(seeds)}"] if seeds else []
