"""FaceGen's genetic algorithm in pixel space (section 3.1): a chromosome is the flattened
image, each gene a channel value in [0, 255]; random initial pixels, μ = 100 with the q = 20
best parents kept (q-elitism), single-point crossover and a mutation that resets a small
fraction of genes to random values. pymoo's GA, tournament selection and single-point
crossover; the survival and the reset mutation are ours (pymoo has neither). `pixel_search` is
the Hydra task of `pixel_ga.py`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from omegaconf import DictConfig
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.survival import Survival
from pymoo.operators.crossover.pntx import SinglePointCrossover
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from ..errors import ConfigError
from ..models.classifier import shapes_classifier
from ..models.trained import load_network
from ..pipeline.grids import image_grid
from ..pipeline.models import build, seed_everything
from ..search import evolve
from ..search.problem import FitnessError
from .data import ShapesSource
from .jobs import check_positive, finished_run, tracked
from .quality import fd_classifier

#: (B, 3, R, R) images in [0, 1] -> (B,) fitness to maximise
ImageFitness = Callable[[torch.Tensor], torch.Tensor]


class PixelProblem(Problem):
    """Maximise an image fitness over flattened images; pymoo minimises F = -fitness."""

    def __init__(self, fitness: ImageFitness, resolution: int = 32):
        super().__init__(n_var=3 * resolution * resolution, n_obj=1, xl=0, xu=255, vtype=int)
        self.fitness, self.resolution = fitness, resolution

    def images(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(x, dtype=np.float32) / 255).view(-1, 3, self.resolution, self.resolution)

    def _evaluate(self, x, out, *args, **kwargs):
        with torch.inference_mode():
            f = self.fitness(self.images(x)).double().numpy()
        if not np.isfinite(f).all():
            raise FitnessError(f"fitness is NaN or infinite for {int((~np.isfinite(f)).sum())} of {len(x)} images")
        out["F"] = -f[:, None]


class ResetMutation(Mutation):
    """Each gene, with probability `rate`, gets a new uniform value in its bounds."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def _do(self, problem, X, random_state=None, **kwargs):
        reset = random_state.random(X.shape) < self.rate
        values = random_state.integers(problem.xl, problem.xu + 1, size=X.shape)
        return np.where(reset, values, X)


class ElitistSurvival(Survival):
    """The `elite` best of the parents plus every offspring: with n_offsprings = μ - q, the
    next population is again μ, and no more than q individuals outlive their generation."""

    def __init__(self, elite: int):
        super().__init__(filter_infeasible=False)
        self.elite = elite

    def _do(self, problem, pop, n_survive=None, algorithm=None, **kwargs):
        n_off = len(pop) - n_survive
        if n_off <= 0:  # the initial population: nothing to replace
            return pop[np.argsort(pop.get("F")[:, 0])][:n_survive]
        parents, offspring = pop[: len(pop) - algorithm.n_offsprings], pop[len(pop) - algorithm.n_offsprings :]
        elite = parents[np.argsort(parents.get("F")[:, 0])[: self.elite]]
        merged = Population.merge(elite, offspring)
        return merged[np.argsort(merged.get("F")[:, 0])]


def facegen_ga(pop_size: int = 100, elite: int = 20, mutation_rate: float = 0.01) -> GA:
    if not 0 <= elite < pop_size:
        raise ValueError(f"elite must be in [0, pop_size), got {elite} for pop_size {pop_size}")
    return GA(
        pop_size=pop_size,
        n_offsprings=pop_size - elite,
        sampling=IntegerRandomSampling(),
        crossover=SinglePointCrossover(prob=1.0),
        mutation=ResetMutation(mutation_rate),
        survival=ElitistSurvival(elite),
        # 3072-gene duplicates are vanishingly rare and costly to look for
        eliminate_duplicates=False,
    )



def image_fitness(cfg: DictConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """FaceGen's realness CNN, or the CLIP cosine similarity of each image to the prompt."""
    if cfg.fitness == "realness":
        return load_network(cfg.realness, kind="realness")
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
                tracker.log_image(image_grid(problem.images(gen.latents[order][:32])),
                                  f"population/gen_{gen.index:04d}.png")
        final = problem.images(gen.latents)
        tracker.log_image(image_grid(problem.images(gen.best_latent[None])), "best.png")
        if classifier is not None:
            reference = (ShapesSource().batch(cfg.eval_samples,
                                              torch.Generator().manual_seed(10_000 + cfg.seed)) + 1) / 2
            tracker.log_metrics(gen.index,
                                {f"fd_classifier_n{len(final)}": fd_classifier(classifier, final, reference)})
        tracker.log_arrays("population.npz", images=(final.numpy() * 255).round().astype(np.uint8), fitness=gen.cos_sim)
    print(f"best {cfg.fitness} fitness {gen.best_cos_sim:.4f} after {cfg.generations} generations | "
          f"MLflow run {tracker.run_id}", flush=True)
    return gen.best_cos_sim

