"""The training driver behind `python train.py`: every model the project trains (the mini-CLIP,
the shapes classifier, the DCGAN, E-GAN, VAE, FaceGen's realness CNN, the DCGAN's realness
critic) is a trainer this loop steps, with one cadence (metrics every `log_every` iterations, an
evaluation every `eval_every`, a sample grid every `sample_every`), one MLflow run
(`jobs.tracked`: FINISHED, FAILED or KILLED), checkpoints every `checkpoint_every` iterations
from which the same command resumes, and one weight writer (`models.weights.save_weights`).

A trainer has `step() -> metrics` (floats or tensors, read only when logged), `network()` (the
module to save), `architecture()` (the JSON that rebuilds it) and `state()` / `load_state()` (all
it needs to continue exactly); generative ones `sample(z)`, `latent_dim` and `class_labels(z)`,
the others may have `evaluate(n)`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from filelock import FileLock
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from ..devices import resolve_device
from ..errors import ConfigError
from ..models.weights import MANIFEST, roundtrip, save_weights, write_manifest
from ..paths import resolve
from ..pipeline.grids import image_grid
from ..pipeline.models import seed_everything
from ..resume import Job
from ..search import CheckpointError
from ..tracking import RunLogger, open_experiment, tracking_uri
from .classifier import ClassifierTrainConfig, ClassifierTrainer
from .clip import ClipTrainConfig, ClipTrainer
from .critic import CriticConfig, CriticTrainer
from .data import ImageSource, image_source
from .gan import DCGANTrainer, EGANConfig, EGANTrainer, GANConfig
from .jobs import check_positive, finished_run, job_identity, tracked
from .quality import Quality
from .realness import RealnessConfig, RealnessTrainer
from .vae import VAEConfig, VAETrainer

# the seeds of the streams evaluations draw from, offset by the job's seed: the reference
# renders, the real images of the floor, the latents judged, the latents of the sample grids
REFERENCE, REAL, JUDGED, GRID = 10_000, 20_000, 30_000, 40_000
# images in a sample grid
GRID_SAMPLES = 64
CHECKPOINT_FORMAT = 1


def trainer_for(cfg: DictConfig, source: ImageSource, g: torch.Generator, device: torch.device):
    m = OmegaConf.to_container(cfg.model, resolve=True)
    name = m.pop("name")
    if name in ("dcgan", "egan"):
        m |= {key: tuple(m[key]) for key in ("classes", "mutations") if key in m}
        tricks = {key: cfg[key] for key in ("instance_noise", "noise_anneal", "real_label")}
        if name == "egan":
            return EGANTrainer(EGANConfig(**m, **tricks, device=str(device)), source, g)
        return DCGANTrainer(GANConfig(**m, **tricks, device=str(device)), source, g)
    if device.type != "cpu":
        raise ConfigError(f"device={cfg.device}: only the GANs (model=dcgan, egan) train on an accelerator")
    if name == "vae":
        return VAETrainer(VAEConfig(**m), source, g)
    if name == "realness":
        return RealnessTrainer(RealnessConfig(**m), source, g)
    if name == "critic":
        return CriticTrainer(CriticConfig(**m), source, g)
    if name == "clip":
        return ClipTrainer(ClipTrainConfig(**m), g)
    if name == "classifier":
        return ClassifierTrainer(ClassifierTrainConfig(**m), g)
    raise ConfigError(f"unknown model {name!r}")


Evaluate = Callable[[int], dict[str, float]]


def evaluation(cfg: DictConfig, trainer, source: ImageSource) -> tuple[Evaluate | None, dict[str, float], str | None]:
    """How the trainer's model is judged on n samples (None: it is not), the floor (real images
    judged alike, at eval_samples and final_samples) and whether FID is computed. A generative
    model's n samples of fixed latents are judged against fixed reference renders."""
    if not hasattr(trainer, "sample"):
        return getattr(trainer, "evaluate", None), {}, None
    quality = Quality(cfg, source, torch.Generator().manual_seed(REFERENCE + cfg.seed))

    def evaluate(n: int) -> dict[str, float]:
        z = torch.randn(n, trainer.latent_dim, generator=torch.Generator().manual_seed(JUDGED + cfg.seed))
        return quality(trainer.sample(z), asked=trainer.class_labels(z))

    def real(n: int) -> dict[str, float]:
        return quality((source.batch(n, torch.Generator().manual_seed(REAL + cfg.seed)) + 1) / 2)

    floor = ({f"{k}_real": v for k, v in real(cfg.eval_samples).items()}
             | {f"{k}_real_n{cfg.final_samples}": v for k, v in real(cfg.final_samples).items()})
    return evaluate, floor, quality.fid_status


def training_job(cfg: DictConfig) -> Job:
    """Where this job's checkpoint goes (beside run.py's, `paths.checkpoints`), and its lock."""
    digest = job_identity(cfg)
    return Job(digest, Job.of(cfg, tracking_uri(cfg.paths.store)).checkpoint.parent / f"{digest}.pt")


def save_checkpoint(job: Job, state: dict) -> None:
    """Tensors and plain values only, so that loading (`weights_only`) cannot run code; renamed
    into place, so that a crash leaves the previous checkpoint or this one."""
    job.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    partial = job.checkpoint.with_name(job.checkpoint.name + ".partial")
    torch.save({"format": CHECKPOINT_FORMAT, "identity": job.identity} | state, partial)
    os.replace(partial, job.checkpoint)


def load_checkpoint(job: Job) -> dict | None:
    if not job.checkpoint.is_file():
        return None
    fix = f"delete {job.checkpoint} to train afresh"
    try:
        state = torch.load(job.checkpoint, weights_only=True)
    except Exception as err:  # torch raises whatever its unpickler met
        raise CheckpointError(f"checkpoint {job.checkpoint} cannot be read ({type(err).__name__}); {fix}") from None
    if state.get("format") != CHECKPOINT_FORMAT or state.get("identity") != job.identity:
        raise CheckpointError(f"checkpoint {job.checkpoint} was written for another config or version; {fix}")
    return state


def check_run_exists(cfg: DictConfig, state: dict, job: Job) -> None:
    client, _ = open_experiment(cfg.experiment_name, tracking_uri(cfg.paths.store))
    try:
        client.get_run(state["run_id"])
    except MlflowException:
        raise CheckpointError(f"checkpoint {job.checkpoint} resumes MLflow run {state['run_id']}, which the store "
                              f"{client.tracking_uri} does not have; delete the checkpoint to train afresh") from None


def check_settings(cfg: DictConfig) -> None:
    check_positive(cfg, "model.iterations", "model.batch_size", "log_every", "eval_every", "eval_samples",
                   "final_samples", "sample_every")
    every = cfg.checkpoint_every
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ConfigError(f"checkpoint_every must be an integer >= 0 (0: never), got {every!r}")


def summary(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())


def run_loop(cfg: DictConfig, trainer, tracker: RunLogger, job: Job, evaluate: Evaluate | None,
             state: dict | None) -> None:
    """Iterations after the checkpoint's (all of them without one) to the last."""
    iterations, start = cfg.model.iterations, state["iteration"] if state else 0
    train_s = state["train_s"] if state else 0.0
    generative = hasattr(trainer, "sample")
    if generative:
        grid_z = torch.randn(GRID_SAMPLES, trainer.latent_dim, generator=torch.Generator().manual_seed(GRID + cfg.seed))
    for it in range(start + 1, iterations + 1):
        # CPU seconds in training steps only (evaluation and logging excluded): unlike wall-clock
        # time, not inflated by other processes on a shared machine
        began = time.process_time()
        metrics = trainer.step()
        train_s += time.process_time() - began
        if it % cfg.log_every == 0 or it == iterations:
            tracker.log_metrics(it, {k: float(v) for k, v in metrics.items()} | {"train_s": train_s})
        if evaluate is not None and (it % cfg.eval_every == 0 or it == iterations or it == 1):
            judged = evaluate(cfg.eval_samples)
            tracker.log_metrics(it, judged)
            print(f"iteration {it}/{iterations}: {summary(judged)}", flush=True)
        if generative and (it % cfg.sample_every == 0 or it == iterations):
            tracker.log_image(image_grid(trainer.sample(grid_z)), f"samples/iter_{it:06d}.png")
        if cfg.checkpoint_every and it % cfg.checkpoint_every == 0 and it < iterations:
            tracker.flush()  # what the checkpoint's iterations logged is in the store
            save_checkpoint(job, {"run_id": tracker.run_id, "iteration": it, "train_s": train_s,
                                  "trainer": trainer.state(), "torch_rng": torch.get_rng_state()})


def write(cfg: DictConfig, path: Path, trainer, network: torch.nn.Module, device: torch.device,
          evaluation: dict[str, float]) -> None:
    """The weights and the JSON that rebuilds them, says how they were trained and how they were judged."""
    training = OmegaConf.to_container(cfg, resolve=True) | {"device": device.type}
    config = {"model": cfg.model.name, "architecture": trainer.architecture(), "training": training,
              "evaluation": evaluation}
    path.parent.mkdir(parents=True, exist_ok=True)
    # jobs writing into one directory side by side (`make world`): each manifest sees the files
    # as they are, none half-renamed
    with FileLock(str(path.parent / f"{MANIFEST}.lock")) if cfg.manifest else nullcontext():
        save_weights(path, network.state_dict(), config, half=cfg.half)
        if cfg.manifest:
            write_manifest(path.parent)


def train(cfg: DictConfig) -> float:
    check_settings(cfg)
    path = resolve(cfg.save)
    done = finished_run(cfg)
    if done is not None and path.is_file():
        print(f"skipped: MLflow run {done} trained this config (weights {path}); skip_finished=false trains it again",
              flush=True)
        return float("nan")
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    source = image_source(cfg.dataset.name, cfg.dataset.root, cfg.dataset.max_images)
    trainer = trainer_for(cfg, source, torch.Generator().manual_seed(cfg.seed), device)
    evaluate, floor, fid_status = evaluation(cfg, trainer, source)
    job = training_job(cfg)
    with job.lock():
        state = load_checkpoint(job) if cfg.resume else None
        if state is not None:
            check_run_exists(cfg, state, job)
            trainer.load_state(state["trainer"])
            torch.set_rng_state(state["torch_rng"])
        with tracked(cfg, "train.py", state and state["run_id"]) as tracker:
            if fid_status is not None:
                tracker.client.set_tag(tracker.run_id, "quality.fid", fid_status[:5000])
            tracker.log_metrics(0, floor)
            run_loop(cfg, trainer, tracker, job, evaluate, state)
            network = trainer.network()
            if cfg.half:
                roundtrip(network)  # the numbers reported are those of the saved weights
            closing = evaluate(cfg.final_samples) if evaluate is not None else {}
            tracker.log_metrics(cfg.model.iterations, {f"{k}_n{cfg.final_samples}": v for k, v in closing.items()})
            write(cfg, path, trainer, network, device, closing | floor)
            for file in (path, path.with_suffix(".json")):
                tracker.log_file(file, "model")
        job.discard()
    print(f"trained {cfg.model.name} on {cfg.dataset.name}: {cfg.model.iterations} iterations"
          f"{' | ' + summary(closing) if closing else ''} | weights {path} | MLflow run {tracker.run_id}", flush=True)
    return closing.get("fd_classifier", float("nan"))

