"""What a run does after each generation and at its end, in the spirit of pymoo's `Callback`:
each observer is one concern (metrics, image artifacts, checkpoints, the final evaluation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tqdm import tqdm

from ..evaluation.evaluate import Evaluation, log_evaluation, summary
from ..search import Generation
from .grids import image_grid, latent_images, population_grid
from .measures import Truth, generation_metrics

if TYPE_CHECKING:
    from .member import PackedRun


class Observer:
    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        """After generation `gen.index` was told to the run's algorithm."""

    def on_end(self, run: PackedRun, gen: Generation) -> None:
        """After the last generation, before the run is marked FINISHED."""


class LogMetrics(Observer):
    """Every generation's metrics (the tracker sends them in batches)."""

    def __init__(self, truth: Truth | None):
        self.truth = truth

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        run.tracker.log_metrics(gen.index, generation_metrics(gen, self.truth))


class LogImages(Observer):
    """Population grids every `every` generations and at the last; the best image and the final
    population at the end."""

    def __init__(self, every: int):
        self.every = every

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        if gen.index % self.every == 0 or run.done:
            grid = population_grid(run.models.generator, gen.latents, gen.cos_sim)
            run.tracker.log_image(grid, f"population/gen_{gen.index:04d}.png")

    def on_end(self, run: PackedRun, gen: Generation) -> None:
        best = latent_images(run.models.generator, gen.best_latent[None])
        run.tracker.log_image(image_grid(best, max_tile=None), "best.png")
        run.tracker.log_arrays("population.npz", latents=gen.latents, cos_sim=gen.cos_sim, best_latent=gen.best_latent,
                               best_cos_sim=gen.best_cos_sim)


class SaveCheckpoints(Observer):
    """The search state every `every` generations (0: never), with the metrics not yet sent."""

    def __init__(self, every: int):
        self.every = every

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        if self.every and (gen.index + 1) % self.every == 0 and not run.done:
            run.save_checkpoint(gen.index)


class EvaluateFinal(Observer):
    """The independent classifier's verdict on the final population."""

    def __init__(self, evaluation: Evaluation):
        self.evaluation = evaluation

    def on_end(self, run: PackedRun, gen: Generation) -> None:
        metrics = log_evaluation(run.tracker, self.evaluation, run.models.generator, gen.index, gen.latents,
                                 gen.cos_sim)
        tqdm.write(f"{run.spec.prefix}classifier accuracy {metrics['eval_accuracy']:.1%} on the final population "
                   f"({self.evaluation.target})")


class EvaluateDuring(Observer):
    """The classifier's verdict metrics (no artifacts) on the population every `every`
    generations before the last, to follow accuracy over the search."""

    def __init__(self, evaluation: Evaluation, every: int):
        self.evaluation, self.every = evaluation, every

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        if gen.index % self.every == 0 and not run.done:  # the last is EvaluateFinal's
            table, _ = self.evaluation.predictions(run.models.generator, gen.latents, gen.cos_sim)
            run.tracker.log_metrics(gen.index, summary(table))


def observers_of(cfg, truth: Truth | None, evaluation: Evaluation | None) -> list[Observer]:
    observers = [LogMetrics(truth), LogImages(cfg.log_every), SaveCheckpoints(cfg.checkpoint_every)]
    if evaluation is None:
        return observers
    every = cfg.evaluation.get("every", 0)
    return observers + ([EvaluateDuring(evaluation, every)] if every else []) + [EvaluateFinal(evaluation)]

