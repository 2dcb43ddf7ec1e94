"""What the Hydra tasks behind `train.py` (`driver.train`) and `pixel_ga.py` (`pixel_ga.pixel_search`)
share: a job's identity, and its MLflow run (never left RUNNING; the entry point's
`cli.run_task` makes one line of an error)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .. import identity
from ..errors import ConfigError
from ..models.pretrained import weights_dir
from ..models.trained import network_files
from ..models.weights import WORLD_DIR, world_files
from ..paths import resolve
from ..pipeline.spec import run_params
from ..tracking import RunLogger, open_experiment, provenance_tags, tracked_run, tracking_uri
from .quality import INCEPTION_FILE


def loaded_files(cfg: DictConfig) -> list[Path]:
    """The weight files a train.py or pixel_ga.py job loads outside its config's models: the
    quality classifier (from `quality.world_dir`, relative to the project like every path in the
    config), FID's Inception (when it is there), FaceGen's realness CNN, the generator a critic is
    fitted to."""
    quality = cfg.get("quality") or {}
    world = resolve(quality["world_dir"]) if quality.get("world_dir") else WORLD_DIR
    files = world_files("classifier", world) if quality.get("classifier") else []
    if quality and quality.get("inception", False) is not False:
        files.append(weights_dir(quality.get("weights")) / INCEPTION_FILE)
    if cfg.get("fitness") == "realness":
        files += network_files(cfg.realness)
    if OmegaConf.select(cfg, "model.name") == "critic":
        generator_dir = cfg.model.generator_dir
        files += world_files("dcgan", resolve(generator_dir) if generator_dir else WORLD_DIR)
    return files


#: where train.py writes its network and pixel_ga.py reads its realness CNN (whose contents count)
FILE_KEYS = ("save", "realness")


def job_identity(cfg: DictConfig) -> str:
    return identity.job_identity(cfg, loaded_files(cfg), FILE_KEYS)


def finished_run(cfg: DictConfig) -> str | None:
    """The id of a FINISHED run of this job, when `skip_finished` allows reusing it: `make egan`
    and `make facegen` share their DCGAN, and a second `make` trains nothing."""
    if not cfg.skip_finished:
        return None
    client, experiment_id = open_experiment(cfg.experiment_name, tracking_uri(cfg.paths.store))
    run = identity.finished_run(client, experiment_id, job_identity(cfg))
    return run.info.run_id if run else None


@contextmanager
def tracked(cfg: DictConfig, source_name: str, resume_run_id: str | None = None) -> Iterator[RunLogger]:
    """A new MLflow run of this job with its config, or the interrupted run `resume_run_id`
    set RUNNING again; FINISHED, FAILED or KILLED when the block ends (`tracking.tracked_run`)."""
    hydra_cfg = HydraConfig.get()
    client, experiment_id = open_experiment(cfg.experiment_name, tracking_uri(cfg.paths.store))
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
    tags = provenance_tags() | {"hydra_overrides": " ".join(hydra_cfg.overrides.task),
                                "mlflow.source.name": source_name,
                                identity.IDENTITY_TAG: job_identity(cfg)}
    name = OmegaConf.select(cfg, "run_name") or hydra_cfg.job.override_dirname or "defaults"
    with tracked_run(client, experiment_id, name, tags, resume_run_id=resume_run_id) as tracker:
        if resume_run_id is None:
            tracker.log_params(run_params(cfg, choices))
            tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        yield tracker


def check_positive(cfg: DictConfig, *keys: str) -> None:
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")
