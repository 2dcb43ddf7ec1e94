"""One run of the pipeline: build generator, scorer and algorithm from the config, evolve, and
track what every generation produced. `run_job` is the Hydra task."""

from __future__ import annotations

import os
import random
import sys
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torchvision
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from scipy.spatial.distance import pdist
from tqdm import tqdm

from .callbacks import SWEEP_SIZE_ENV
from .errors import ConfigError, LatentevoError, storage_error
from .devices import resolve_device
from .evaluation.evaluate import build_evaluation, evaluation_prompt, log_evaluation
from .models.base import Generator, Scorer
from .resume import IDENTITY_TAG, Job, rng_states, set_rng_states
from .search import Generation, LatentProblem, PriorSampling, evolve, min_pop_size, run_on, state_is_picklable
from .tracking import RunLogger, open_experiment, provenance_tags, tracked_run, tracking_uri
from .tracking.store import PROJECT_DIR

DEVICES = ("auto", "cpu", "cuda")
# Grid tiles are upscaled (nearest) to at least this many pixels, so small images stay visible,
# and population grids of large images downscaled to at most MAX_TILE, so they stay small files.
MIN_TILE = 128
MAX_TILE = 256


# --- configuration -----------------------------------------------------------------------------


def _positive_int(cfg: DictConfig, key: str) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")
    return value


def validate(cfg: DictConfig) -> None:
    """Checks that need no model, so that bad input fails before anything is loaded."""
    if not isinstance(cfg.prompt, str) or not cfg.prompt.strip():
        raise ConfigError("prompt is empty; give one, e.g. prompt='a red circle'")
    for key in ("generations", "pop_size", "log_every", "batch_size"):
        _positive_int(cfg, key)
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {cfg.seed!r}")
    if cfg.threads is not None:
        _positive_int(cfg, "threads")
    if isinstance(cfg.checkpoint_every, bool) or not isinstance(cfg.checkpoint_every, int) or cfg.checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be an integer >= 0 (0: no checkpoints), got {cfg.checkpoint_every!r}")
    if not isinstance(cfg.resume, bool):
        raise ConfigError(f"resume must be true or false, got {cfg.resume!r}")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    algorithm_cls = get_class(cfg.algo._target_)
    needed = min_pop_size(algorithm_cls)
    if cfg.pop_size < needed:
        raise ConfigError(f"pop_size={cfg.pop_size} is too small for {algorithm_cls.__name__}; it needs pop_size >= {needed}")


def seed_everything(seed: int) -> None:
    """pymoo gets the seed through `algorithm.setup`; these cover everything else."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_prompt(prompt: str, scorer: Scorer) -> None:
    tokens = scorer.count_tokens(prompt)
    if tokens > scorer.context_length:
        raise ConfigError(
            f"prompt is {tokens} tokens, longer than the scorer's context of {scorer.context_length}; shorten it"
        )


# --- models as search functions ----------------------------------------------------------------


def build(node: DictConfig, **kwargs):
    """`instantiate`, with our own errors (missing weights, bad sizes) kept as they are rather
    than wrapped in Hydra's InstantiationException."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, LatentevoError):
            raise err.__cause__ from None
        raise


def build_scorer(cfg: DictConfig, device: torch.device) -> Scorer:
    scorer = build(cfg.clip)
    if cfg.augment:
        scorer = build(cfg.augment, scorer=scorer)
    return scorer.to(device)


def prior_sampler(generator: Generator) -> Callable[[int, np.random.Generator], np.ndarray]:
    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        torch_rng = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
        return generator.sample_latents(n, torch_rng).double().numpy()

    return sample


def fitness(generator: Generator, scorer: Scorer, text_embedding: torch.Tensor, batch_size: int):
    """latents -> cos_sim of their images to the (pre-embedded) prompt, `batch_size` at a time.
    A chunk that runs out of GPU memory is retried in halves, and the size that fits is kept."""
    chunk = [batch_size]

    @torch.inference_mode()
    def evaluate(latents: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(latents).float()
        while True:
            try:
                sims = [scorer.cos_sim(generator(part), text_embedding) for part in z.split(chunk[0])]
                return torch.cat(sims).double().cpu().numpy()
            except torch.cuda.OutOfMemoryError:
                if chunk[0] == 1:
                    raise ConfigError("out of GPU memory with one latent per forward pass; use precision=fp16, "
                                      "a smaller generator or device=cpu") from None
                chunk[0] = max(1, chunk[0] // 2)
                torch.cuda.empty_cache()

    return evaluate


def ground_truth(generator: Generator, prompt: str) -> Callable[[np.ndarray], dict[str, np.ndarray]] | None:
    """For generators with a ground truth (the shapes world): latents -> what each latent's image
    really shows, per measure. `truth_match`: the fraction of the attributes named in the prompt
    that the image has. `colour_leak`, when the prompt names the object's colour and not that
    colour for the background: 1 where the background has the object's colour (the thesis's
    colour "leaking" from the object into the background), else 0."""
    if not hasattr(generator, "scenes"):
        return None
    from .world import ATTRIBUTES
    from .world.captions import UNNAMED, parse_prompt

    content = torch.tensor(parse_prompt(prompt))
    named = content != UNNAMED
    if not named.any():
        return None
    colour, background = (int(content[ATTRIBUTES.index(a)]) for a in ("colour", "background"))
    leak_measured = colour != UNNAMED and background != colour

    def measure(latents: np.ndarray) -> dict[str, np.ndarray]:
        labels = generator.scenes(torch.from_numpy(latents).float()).labels()
        truth = torch.stack([labels[a].cpu() for a in ATTRIBUTES], dim=1)
        measures = {"truth_match": (((truth == content) & named).sum(1) / named.sum()).numpy()}
        if leak_measured:
            measures["colour_leak"] = (labels["background"].cpu() == colour).double().numpy()
        return measures

    return measure


@torch.inference_mode()
def image_grid(generator: Generator, latents: np.ndarray, nrow: int = 8, max_tile: int | None = MAX_TILE) -> np.ndarray:
    """(H, W, 3) uint8 grid of the latents' images, row-major; tiles at most `max_tile` px (None: full size)."""
    images = generator(torch.from_numpy(latents).float()).float().cpu()
    if max_tile and images.shape[-1] > max_tile:
        images = F.interpolate(images, size=(max_tile, max_tile), mode="area")
    scale = max(1, MIN_TILE // images.shape[-1])
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    grid = torchvision.utils.make_grid(images, nrow=min(nrow, len(images)), padding=2 * scale, pad_value=0.5)
    return (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def generation_metrics(gen: Generation, truth: Callable[[np.ndarray], dict[str, np.ndarray]] | None) -> dict[str, float]:
    metrics = {
        "best_cos_sim": gen.best_cos_sim,
        "mean_cos_sim": float(gen.cos_sim.mean()),
        "std_cos_sim": float(gen.cos_sim.std()),
        # mean pairwise distance of the population's latents per sqrt(dim): about sqrt(2) for
        # independent prior draws, 0 for a collapsed population
        "diversity": float(pdist(gen.latents).mean() / np.sqrt(gen.latents.shape[1])) if len(gen.latents) > 1 else 0.0,
        "n_evals": gen.n_evals,
    }
    if truth is not None:
        # each ground-truth measure of the best image, and its population mean as pop_<measure>
        for name, values in truth(np.vstack([gen.best_latent, gen.latents])).items():
            metrics[name] = float(values[0])
            metrics[f"pop_{name}"] = float(values[1:].mean())
    return metrics


# --- tracking ----------------------------------------------------------------------------------


def run_params(cfg: DictConfig, choices: dict[str, str]) -> dict[str, object]:
    """The flattened resolved config, plus which option of each config group was chosen."""
    flat = pd.json_normalize(OmegaConf.to_container(cfg, resolve=True), sep=".").iloc[0].to_dict()
    return flat | {f"choice.{group}": option for group, option in choices.items()}


def job_label(hydra_cfg) -> str:
    """'job 3/100' in a sweep, '' for a single run."""
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return ""
    return f"job {hydra_cfg.job.num + 1}/{os.environ.get(SWEEP_SIZE_ENV, '?')}"


# --- the run -----------------------------------------------------------------------------------


def run(cfg: DictConfig) -> float:
    """Evolve, track, and print where the result is; returns the best cos_sim. With `resume`, a
    job whose config already FINISHED is skipped and an interrupted one resumed from its checkpoint."""
    validate(cfg)
    if cfg.get("evaluation"):
        evaluation_prompt(cfg)  # the prompt asks for the evaluated class
    hydra_cfg = HydraConfig.get()
    client, experiment_id = open_experiment(cfg.experiment_name)
    job = Job.of(cfg, tracking_uri())
    run_name = hydra_cfg.job.override_dirname or "defaults"
    label = job_label(hydra_cfg)
    prefix = f"{label} " if label else ""
    with job.lock():
        done = job.finished_run(client, experiment_id) if cfg.resume else None
        if done is not None:
            job.discard()
            print(f"{prefix}skipped {run_name}: MLflow run {done.info.run_id} with the same config already FINISHED "
                  "(resume=false runs it again)", flush=True)
            return done.data.metrics.get("best_cos_sim", float("nan"))
        device, generator, scorer = build_models(cfg)
        evaluation = build_evaluation(cfg, device, build)
        with torch.inference_mode():
            text_embedding = scorer.embed_text([cfg.prompt])[0]
        evaluate, sample = fitness(generator, scorer, text_embedding, cfg.batch_size), prior_sampler(generator)
        # closures over the models: checkpoints refer to them by name, and get them back on load
        externals = {"evaluate": evaluate, "sample": sample}
        state = job.load(client, externals) if cfg.resume else None
        restored = state["algorithm"] if state else None
        algorithm = restored if restored is not None else build(cfg.algo, sampling=PriorSampling(sample))
        problem = LatentProblem(evaluate, generator.latent_dim, generator.latent_bound)
        truth = ground_truth(generator, cfg.prompt)

        choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
        tags = provenance_tags() | {
            "device": str(device),
            "hydra_overrides": " ".join(hydra_cfg.overrides.task),
            "mlflow.source.name": "run.py",
            IDENTITY_TAG: job.config_hash,
        }
        with tracked_run(client, experiment_id, run_name, tags, resume_run_id=state and state["run_id"]) as tracker:
            if state is None:
                tracker.log_params(run_params(cfg, choices))
                tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
            else:
                how = "restoring its search state" if algorithm.is_initialized else "replaying its generations from the seed"
                print(f"{prefix}resuming MLflow run {tracker.run_id} ({run_name}) after generation {state['generation']}, "
                      f"{how}", flush=True)
                tracker.log_points(state["pending"])
                if algorithm.is_initialized:
                    set_rng_states(state["rng"], generator, scorer)

            def checkpoint(index: int) -> None:
                job.save(search_state(index, algorithm, tracker, generator, scorer), externals)

            def evaluate_final(gen: Generation) -> None:
                if evaluation is not None:
                    metrics = log_evaluation(tracker, evaluation, generator, gen.index, gen.latents, gen.cos_sim)
                    print(f"{prefix}classifier accuracy {metrics['eval_accuracy']:.1%} on the final population "
                          f"({evaluation.target})", flush=True)

            best = evolve_tracked(cfg, algorithm, problem, generator, truth, tracker, f"{label} {run_name}".strip(),
                                  checkpoint, evaluate_final)
            best_image = tracker.artifact_location("best.png")
        job.discard()
    print(f"{prefix}best cos_sim {best:.4f} | best image {best_image} | MLflow run {tracker.run_id}", flush=True)
    return best


def build_models(cfg: DictConfig) -> tuple[torch.device, Generator, Scorer]:
    """Seeded first, so that randomly initialised models are the same in a resumed run."""
    seed_everything(cfg.seed)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    generator: Generator = build(cfg.generator).to(device)
    scorer = build_scorer(cfg, device)
    check_prompt(cfg.prompt, scorer)
    return device, generator, scorer


def search_state(index: int, algorithm, tracker: RunLogger, generator: Generator, scorer: Scorer) -> dict:
    """What a checkpoint holds after generation `index`."""
    return {
        "run_id": tracker.run_id,
        "generation": index,
        "algorithm": algorithm if state_is_picklable(algorithm) else None,
        "rng": rng_states(generator, scorer),
        # metrics not yet sent: kept here until the store has them
        "pending": tracker.pending(),
    }


def evolve_tracked(cfg, algorithm, problem, generator, truth, tracker: RunLogger, desc: str,
                   checkpoint: Callable[[int], None], on_final: Callable[[Generation], None] | None = None) -> float:
    """The generation loop: metrics every generation, population grids every `log_every`, and
    the search state every `checkpoint_every`, with the metrics not yet sent (the tracker sends
    them in batches). A restored algorithm carries on where its checkpoint left it."""
    if algorithm.is_initialized:
        start, generations = algorithm.n_iter - 1, run_on(algorithm)
    else:
        start, generations = 0, evolve(algorithm, problem, cfg.generations, cfg.seed)
    with tqdm(total=cfg.generations, initial=start, desc=desc, unit="gen", dynamic_ncols=True) as bar:
        for gen in generations:
            tracker.log_metrics(gen.index, generation_metrics(gen, truth))
            if gen.index % cfg.log_every == 0 or not algorithm.has_next():
                order = np.argsort(-gen.cos_sim)
                tracker.log_image(image_grid(generator, gen.latents[order]), f"population/gen_{gen.index:04d}.png")
            if cfg.checkpoint_every and (gen.index + 1) % cfg.checkpoint_every == 0 and algorithm.has_next():
                checkpoint(gen.index)
            bar.set_postfix_str(f"best cos_sim {gen.best_cos_sim:.4f}", refresh=False)
            bar.update()
    tracker.log_image(image_grid(generator, gen.best_latent[None], max_tile=None), "best.png")
    tracker.log_arrays(
        "population.npz", latents=gen.latents, cos_sim=gen.cos_sim, best_latent=gen.best_latent, best_cos_sim=gen.best_cos_sim
    )
    if on_final is not None:
        on_final(gen)
    return gen.best_cos_sim


def run_job(cfg: DictConfig) -> float:
    """The Hydra task. A LatentevoError ends a single run with its one-line message (the run
    is already marked FAILED); in a sweep it fails this job and the sweep goes on."""
    try:
        try:
            return run(cfg)
        except OSError as err:
            raise storage_error(err) from err
    except LatentevoError as err:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.RUN:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(1) from None
        tqdm.write(f"{job_label(hydra_cfg)} ({hydra_cfg.job.override_dirname}) failed: {err}", file=sys.stderr)
        raise
