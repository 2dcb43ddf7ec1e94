"""What a run does after each generation and at its end, in the spirit of pymoo's `Callback`:
each observer is one concern (metrics, image artifacts, checkpoints, the final evaluation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ..evaluation.evaluate import Evaluation, log_evaluation
from ..search import Generation
from .grids import image_grid, latent_images, population_grid
from .measures import Truth, best_realness, front_metrics, generation_metrics
from .objectives import objectives_of, reference_point

if TYPE_CHECKING:
    from .member import PackedRun


class Observer:
    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        """After generation `gen.index` was told to the run's algorithm."""

    def on_end(self, run: PackedRun, gen: Generation) -> None:
        """After the last generation, before the run is marked FINISHED."""


class LogMetrics(Observer):
    """Every generation's metrics (the tracker sends them in batches): with several objectives,
    the front's size and hypervolume; with a realness model, the best image's realness."""

    def __init__(self, truth: Truth | None, reference: np.ndarray):
        self.truth, self.reference = truth, reference

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        metrics = generation_metrics(gen, self.truth) | front_metrics(gen, self.reference)
        if run.models.realness is not None:
            metrics |= best_realness(run.models.generator, run.models.realness, gen)
        run.tracker.log_metrics(gen.index, metrics)


class LogImages(Observer):
    """Population grids every `every` generations and at the last; the best image and the final
    population at the end, and with several objectives the final front's images (best cos_sim
    first), `front.png`."""

    def __init__(self, every: int):
        self.every = every

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        if gen.index % self.every == 0 or run.done:
            grid = population_grid(run.models.generator, gen.latents, gen.cos_sim)
            run.tracker.log_image(grid, f"population/gen_{gen.index:04d}.png")

    def on_end(self, run: PackedRun, gen: Generation) -> None:
        best = latent_images(run.models.generator, gen.best_latent[None])
        run.tracker.log_image(image_grid(best, max_tile=None), "best.png")
        fronts = {}
        if gen.front is not None:
            run.tracker.log_image(population_grid(run.models.generator, gen.latents[gen.front], gen.cos_sim[gen.front]),
                                  "front.png")
            fronts = {"objectives": gen.objectives, "front": gen.front}
        run.tracker.log_arrays("population.npz", latents=gen.latents, cos_sim=gen.cos_sim, best_latent=gen.best_latent,
                               best_cos_sim=gen.best_cos_sim, **fronts)


class SaveCheckpoints(Observer):
    """The search state every `every` generations (0: never), with the metrics not yet sent."""

    def __init__(self, every: int):
        self.every = every

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        if self.every and (gen.index + 1) % self.every == 0 and not run.done:
            run.save_checkpoint(gen.index)


class EvaluateFinal(Observer):
    """The independent classifier's verdict on the final population, and on the run's best image
    (the front's pick with several objectives): its probability of the target class."""

    def __init__(self, evaluation: Evaluation):
        self.evaluation = evaluation

    def on_end(self, run: PackedRun, gen: Generation) -> None:
        metrics = log_evaluation(run.tracker, self.evaluation, run.models.generator, gen.index, gen.latents,
                                 gen.cos_sim)
        best, _ = self.evaluation.predictions(run.models.generator, gen.best_latent[None], np.array([gen.best_cos_sim]))
        run.tracker.log_metrics(gen.index, {"eval_best_target_probability": float(best["target_probability"][0]),
                                            "eval_best_correct": float(best["correct"][0])})
        tqdm.write(f"{run.spec.prefix}classifier accuracy {metrics['eval_accuracy']:.1%} on the final population "
                   f"({self.evaluation.target})")


def observers_of(cfg, truth: Truth | None, evaluation: Evaluation | None) -> list[Observer]:
    observers = [LogMetrics(truth, reference_point(objectives_of(cfg))), LogImages(cfg.log_every),
                 SaveCheckpoints(cfg.checkpoint_every)]
    return observers + ([EvaluateFinal(evaluation)] if evaluation is not None else [])

