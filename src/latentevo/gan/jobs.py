"""The Hydra tasks behind `train.py` (train a generative model, tracked in MLflow) and
`pixel_ga.py` (FaceGen's pixel-space GA), with run.py's error discipline: bad input is one
`error:` line and exit 1, and no MLflow run is left RUNNING."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .. import identity
from ..errors import ConfigError, LatentevoError, storage_error
from ..pipeline.grids import MIN_TILE
from ..pipeline.models import build, seed_everything
from ..pipeline.spec import run_params
from ..models.classifier import ShapesClassifier, shapes_classifier
from ..models.pretrained import weights_dir
from ..models.weights import world_files
from ..search import evolve
from ..tracking import RunLogger, open_experiment, provenance_tags, tracked_run
from . import checkpoint
from .adversarial import DCGANTrainer, EGANTrainer, GANConfig
from .datasets import ImageSource, image_source
from .fid import INCEPTION_FILE, fd_classifier, fid, fid_inception_net
from .pixel_ga import PixelProblem, facegen_ga
from .realness import RealnessConfig, RealnessTrainer
from .vae import VAEConfig, VAETrainer

INCEPTION_MODES = ("auto", True, False)
#: samples in the table's like-for-like Fréchet distance: the pixel GA's population
TABLE_SAMPLES = 100


# --- shared -----------------------------------------------------------------------------------


def exit_one_line(task: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """A LatentevoError (or a full disk) ends the job with one line; the run is already FAILED."""

    def wrapped(cfg: DictConfig):
        try:
            try:
                return task(cfg)
            except OSError as err:
                raise storage_error(err) from err
        except LatentevoError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapped


def loaded_files(cfg: DictConfig) -> list[Path]:
    """The weight files a train.py or pixel_ga.py job loads outside its config's models: the
    quality classifier, FID's Inception (when it is there), FaceGen's realness CNN."""
    files = world_files("classifier") if cfg.quality.classifier else []
    if cfg.quality.get("inception", False) is not False:
        files.append(weights_dir(cfg.quality.weights) / INCEPTION_FILE)
    if cfg.get("fitness") == "realness":
        files += checkpoint.network_files(cfg.realness)
    return files


def job_identity(cfg: DictConfig) -> str:
    return identity.job_identity(cfg, loaded_files(cfg))


def finished_run(cfg: DictConfig) -> str | None:
    """The id of a FINISHED run of this job, when `skip_finished` allows reusing it: `make egan`
    and `make facegen` share their DCGAN, and a second `make` trains nothing."""
    if not cfg.skip_finished:
        return None
    client, experiment_id = open_experiment(cfg.experiment_name)
    run = identity.finished_run(client, experiment_id, job_identity(cfg))
    return run.info.run_id if run else None


@contextmanager
def tracked(cfg: DictConfig, source_name: str) -> Iterator[RunLogger]:
    hydra_cfg = HydraConfig.get()
    client, experiment_id = open_experiment(cfg.experiment_name)
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
    tags = provenance_tags() | {"hydra_overrides": " ".join(hydra_cfg.overrides.task), "mlflow.source.name": source_name,
                                identity.IDENTITY_TAG: job_identity(cfg)}
    with tracked_run(client, experiment_id, hydra_cfg.job.override_dirname or "defaults", tags) as tracker:
        tracker.log_params(run_params(cfg, choices))
        tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        yield tracker


def check_positive(cfg: DictConfig, *keys: str) -> None:
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")


def grid(images: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """(H, W, 3) uint8 grid of images in [0, 1], tiles upscaled like the search's grids."""
    scale = max(1, MIN_TILE // images.shape[-1])
    images = F.interpolate(images.float(), scale_factor=scale, mode="nearest") if scale > 1 else images.float()
    tiles = torchvision.utils.make_grid(images, nrow=min(nrow, len(images)), padding=2 * scale, pad_value=0.5)
    return (tiles.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


class Quality:
    """Distribution quality of samples against a fixed reference set of real images."""

    def __init__(self, cfg: DictConfig, source: ImageSource, g: torch.Generator):
        if cfg.quality.inception not in INCEPTION_MODES:
            raise ConfigError(f"quality.inception must be auto, true or false, got {cfg.quality.inception!r}")
        self.reference = (source.batch(cfg.eval_samples, g) + 1) / 2
        self.classifier: ShapesClassifier | None = shapes_classifier() if cfg.quality.classifier else None
        self.inception, self.fid_status = None, "off (quality.inception=false)"
        if cfg.quality.inception is not False:
            try:
                self.inception = fid_inception_net(cfg.quality.weights)
                self.fid_status = "computed"
            except LatentevoError as err:
                if cfg.quality.inception is True:
                    raise
                self.fid_status = f"skipped: {err}"

    def __call__(self, samples: torch.Tensor) -> dict[str, float]:
        out = {}
        if self.classifier is not None:
            out["fd_classifier"] = fd_classifier(self.classifier, samples, self.reference)
        if self.inception is not None:
            out["fid"] = fid(self.inception, samples, self.reference)
        return out


# --- train.py ---------------------------------------------------------------------------------


def trainer_for(cfg: DictConfig, source: ImageSource, g: torch.Generator):
    m = OmegaConf.to_container(cfg.model, resolve=True)
    name = m.pop("name")
    if name in ("dcgan", "egan"):
        if name == "egan":
            m["mutations"] = tuple(m["mutations"])
        gan_cfg = GANConfig(iterations=cfg.model.iterations, **{k: v for k, v in m.items() if k != "iterations"},
                            instance_noise=cfg.instance_noise, real_label=cfg.real_label)
        if name == "egan":
            try:
                return EGANTrainer(gan_cfg, source, g)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        return DCGANTrainer(gan_cfg, source, g)
    if name == "vae":
        return VAETrainer(VAEConfig(**m), source, g)
    if name == "realness":
        return RealnessTrainer(RealnessConfig(**m), source, g)
    raise ConfigError(f"unknown model {name!r}")


def train(cfg: DictConfig) -> float:
    check_positive(cfg, "model.iterations", "model.batch_size", "log_every", "eval_every", "eval_samples", "sample_every")
    done = finished_run(cfg)
    if done is not None and checkpoint.resolve(cfg.save).is_file():
        print(f"skipped: MLflow run {done} trained this config (weights {checkpoint.resolve(cfg.save)}); "
              "skip_finished=false trains it again", flush=True)
        return float("nan")
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    source = image_source(cfg.dataset.name, cfg.dataset.root, cfg.dataset.max_images)
    g = torch.Generator().manual_seed(cfg.seed)
    trainer = trainer_for(cfg, source, g)
    generative = hasattr(trainer, "sample")
    quality = Quality(cfg, source, torch.Generator().manual_seed(10_000 + cfg.seed)) if generative else None
    fixed_z = trainer.z(64) if generative else None
    iterations, last = cfg.model.iterations, {}
    with tracked(cfg, "train.py") as tracker:
        if generative:
            tracker.client.set_tag(tracker.run_id, "quality.fid", quality.fid_status[:5000])
            # the floor: real images against the reference, at both sample counts
            def real(n: int) -> torch.Tensor:
                return (source.batch(n, torch.Generator().manual_seed(20_000 + cfg.seed)) + 1) / 2

            tracker.log_metrics(0, {f"{k}_real": v for k, v in quality(real(cfg.eval_samples)).items()}
                                | {f"{k}_real_n{TABLE_SAMPLES}": v for k, v in quality(real(TABLE_SAMPLES)).items()})
        # CPU seconds in training steps only (evaluation and logging excluded): unlike wall-clock
        # time, not inflated by other processes on a shared machine
        train_s = 0.0
        for it in range(1, iterations + 1):
            start = time.process_time()
            metrics = trainer.step()
            train_s += time.process_time() - start
            if it % cfg.log_every == 0 or it == iterations:
                tracker.log_metrics(it, metrics | {"train_s": train_s})
            if generative and (it % cfg.eval_every == 0 or it == iterations or it == 1):
                last = quality(trainer.sample(trainer.z(cfg.eval_samples)))
                tracker.log_metrics(it, last)
            if generative and (it % cfg.sample_every == 0 or it == iterations):
                tracker.log_image(grid(trainer.sample(fixed_z)), f"samples/iter_{it:06d}.png")
        if generative:
            tracker.log_metrics(iterations, {f"{k}_n{TABLE_SAMPLES}": v for k, v in
                                             quality(trainer.sample(trainer.z(TABLE_SAMPLES))).items()})
        path = checkpoint.resolve(cfg.save)
        checkpoint.save(path, *trainer.export())
        tracker.client.log_artifact(tracker.run_id, str(path), "model")
        tracker.client.log_artifact(tracker.run_id, str(path.with_suffix(".json")), "model")
    summary = ", ".join(f"{k} {v:.3f}" for k, v in last.items())
    print(f"trained {cfg.model.name} on {cfg.dataset.name}: {iterations} iterations"
          f"{' | ' + summary if summary else ''} | weights {path} | MLflow run {tracker.run_id}", flush=True)
    return last.get("fd_classifier", float("nan"))


train_job = exit_one_line(train)


# --- pixel_ga.py ------------------------------------------------------------------------------


def image_fitness(cfg: DictConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """FaceGen's realness CNN, or the CLIP cosine similarity of each image to the prompt."""
    if cfg.fitness == "realness":
        return checkpoint.load_network(cfg.realness, kind="realness")
    if cfg.fitness == "clip":
        if not isinstance(cfg.prompt, str) or not cfg.prompt.strip():
            raise ConfigError("prompt is empty; give one, e.g. prompt='a red circle'")
        scorer = build(cfg.clip)
        text = scorer.embed_text([cfg.prompt])[0]
        return lambda images: scorer.cos_sim(images, text)
    raise ConfigError(f"fitness must be realness or clip, got {cfg.fitness!r}")


def pixel_search(cfg: DictConfig) -> float:
    check_positive(cfg, "generations", "pop_size", "log_every")
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    fitness = image_fitness(cfg)
    done = finished_run(cfg)
    if done is not None:
        print(f"skipped: MLflow run {done} ran this config; skip_finished=false runs it again", flush=True)
        return float("nan")
    try:
        algorithm = facegen_ga(cfg.pop_size, cfg.elite, cfg.mutation_rate)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    problem = PixelProblem(fitness)
    classifier = shapes_classifier() if cfg.quality.classifier else None
    with tracked(cfg, "pixel_ga.py") as tracker:
        for gen in evolve(algorithm, problem, cfg.generations, cfg.seed):
            f = gen.cos_sim  # the loop's name for the fitness it maximises
            tracker.log_metrics(gen.index, {"best_fitness": gen.best_cos_sim, "mean_fitness": float(f.mean()),
                                            "std_fitness": float(f.std()), "n_evals": gen.n_evals})
            if gen.index % cfg.log_every == 0 or not algorithm.has_next():
                order = np.argsort(-f)
                tracker.log_image(grid(problem.images(gen.latents[order][:32])), f"population/gen_{gen.index:04d}.png")
        final = problem.images(gen.latents)
        tracker.log_image(grid(problem.images(gen.best_latent[None])), "best.png")
        if classifier is not None:
            reference = (image_source("shapes").batch(cfg.eval_samples, torch.Generator().manual_seed(10_000 + cfg.seed)) + 1) / 2
            tracker.log_metrics(gen.index, {f"fd_classifier_n{len(final)}": fd_classifier(classifier, final, reference)})
        tracker.log_arrays("population.npz", images=(final.numpy() * 255).round().astype(np.uint8), fitness=gen.cos_sim)
    print(f"best {cfg.fitness} fitness {gen.best_cos_sim:.4f} after {cfg.generations} generations | "
          f"MLflow run {tracker.run_id}", flush=True)
    return gen.best_cos_sim


pixel_job = exit_one_line(pixel_search)
