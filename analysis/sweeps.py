"""Which jobs of an experiment's sweep (conf/experiment/<name>.yaml plus overrides) have no
finished run in the store yet, and running just those. A job is done as run.py decides it: its
config, composed as `run.py -m` composes it, has a FINISHED run of its identity
(`latentevo.identity`)."""

from __future__ import annotations

import subprocess
import sys
from itertools import groupby

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from latentevo.errors import LatentevoError
from latentevo.identity import finished_run, job_identity
from latentevo.paths import PROJECT_DIR
from latentevo.pipeline import RunSpec
from latentevo.tracking import tracking_uri

from .load import client_for

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


def job_specs(name: str, overrides: list[str] = ()) -> list[tuple[list[str], RunSpec | None]]:
    """Each job of the sweep with its config as run.py runs it, or None where run.py would refuse
    it (it says why when it runs). Composing takes a tenth of a second, so jobs that differ only
    in their seed (a plain top-level value) are composed once and given their own seed."""
    _, jobs = sweep_jobs(name, overrides)
    composed: dict[tuple[str, ...], tuple[DictConfig, dict[str, str]]] = {}
    specs = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for job in jobs:
            rest = tuple(_without_seed(job))
            if rest not in composed:
                composed[rest] = _composed(name, list(rest))
            cfg, choices = composed[rest]
            seeds = [o.value() for o in _parse(job) if o.key_or_group == "seed"]
            specs.append((job, _spec(OmegaConf.merge(cfg, {"seed": seeds[-1]}) if seeds else cfg, job, choices)))
    return specs


def _composed(name: str, job: list[str]) -> tuple[DictConfig, dict[str, str]]:
    """The job's config as its task sees it (Hydra's node removed), and its config groups' choices."""
    cfg = compose("config", overrides=[f"experiment={name}", *job], return_hydra_config=True)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def _spec(cfg: DictConfig, job: list[str], choices: dict[str, str]) -> RunSpec | None:
    try:
        return RunSpec.of(cfg, " ".join(job), job, choices)
    except LatentevoError:
        return None


def is_done(client: MlflowClient, spec: RunSpec) -> bool:
    experiment = client.get_experiment_by_name(spec.cfg.experiment_name)
    return experiment is not None and finished_run(client, experiment.experiment_id, job_identity(spec.cfg)) is not None


def missing_jobs(name: str, overrides: list[str] = (), uri: str | None = None) -> list[list[str]]:
    """The jobs of the sweep with no FINISHED run of their identity in the store: `uri`, else the
    one the overrides' paths name (paths=<option>, paths.store=...)."""
    cfg, _ = sweep_jobs(name, overrides)
    client, _ = client_for(uri or tracking_uri(cfg.paths.store))
    return [job for job, spec in job_specs(name, overrides) if spec is None or not is_done(client, spec)]


def run_missing(name: str, overrides: list[str] = ()) -> int:
    """Runs the missing jobs: the whole sweep in one `run.py -m` when none has run yet, else one
    per combination of everything but the seed, so an interrupted sweep resumes without re-running
    its finished jobs. The overrides' paths say where they write (Hydra's job folders under
    paths.sweeps, one per command). Returns how many jobs ran."""
    missing = missing_jobs(name, overrides)
    if len(missing) == len(sweep_jobs(name, overrides)[1]):  # nothing ran yet
        commands = [list(overrides)]
    else:
        commands = [rest + _seed_sweep(list(group)) for rest, group in groupby(sorted(missing, key=_without_seed),
                                                                               key=_without_seed)]
    for i, args in enumerate(commands if missing else []):
        command = [sys.executable, "run.py", "-m", f"experiment={name}", *args, *sweep_folder(f"{name}-{i}")]
        print(f"{name}: running missing jobs: {' '.join(command[3:])}", flush=True)
        if subprocess.run(command, cwd=PROJECT_DIR).returncode != 0:
            raise LatentevoError(f"{name}: some jobs failed (see above); run the same command again to retry them")
    return len(missing)


def sweep_folder(name: str) -> list[str]:
    """Hydra's job folders of one command under <paths.sweeps>/<date>/<time>/<name>: commands
    started within the same second do not share them."""
    return [f"hydra.sweep.subdir={name}/${{hydra.job.num}}"]


def _without_seed(job: list[str]) -> list[str]:
    return [o for o in job if not o.startswith("seed=")]


def _seed_sweep(jobs: list[list[str]]) -> list[str]:
    """One seed=a,b,c override for jobs that differ only in their seed."""
    seeds = [o.removeprefix("seed=") for job in jobs for o in job if o.startswith("seed=")]
    return [f"seed={','.join(seeds)}"] if seeds else []
