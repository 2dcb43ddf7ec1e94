"""What a run does after each generation and at its end, in the spirit of pymoo's `Callback`:
each observer is one concern (metrics, image artifacts, checkpoints, the final evaluation)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ..evaluation.evaluate import Evaluation, log_evaluation, summary
from ..prompts import Prompt
from ..search import Generation
from .animation import FRAME_MS, gif_frame, spaced_steps
from .grids import grid_order, image_grid, latent_images, population_grid
from .measures import best_realness, front_metrics, generation_metrics
from .objectives import Columns

if TYPE_CHECKING:
    from .member import PackedRun


class Observer:
    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        """After generation `gen.index` was told to the run's algorithm."""

    def on_end(self, run: PackedRun, gen: Generation) -> None:
        """After the last generation, before the run is marked FINISHED."""


class LogMetrics(Observer):
    """Every generation's metrics (the tracker sends them in batches): with several objectives,
    the front's size and hypervolume; with a realness model, the best image's realness; with
    prompt algebra or an image prompt, each term's cos_sim of the best image."""

    def __init__(self, reference: np.ndarray, per_term: bool):
        self.reference, self.per_term = reference, per_term

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        metrics = generation_metrics(gen, run.measured) | front_metrics(gen, self.reference)
        if self.per_term:
            metrics |= run.terms.metrics()
        if run.models.realness is not None:
            metrics |= best_realness(run.models.generator, run.models.realness, gen)
        run.tracker.log_metrics(gen.index, metrics)


#: the run page's image chart of the best image so far, one image per logged generation
BEST_IMAGE_KEY = "best"
POPULATION_DIR = "population"
POPULATION_GRID = re.compile(rf"{POPULATION_DIR}/gen_(\d+)\.png")


def best_image(run: PackedRun, gen: Generation) -> np.ndarray:
    return image_grid(latent_images(run.models.generator, gen.best_latent[None]), max_tile=None)


def grid_and_best_image(run: PackedRun, gen: Generation) -> tuple[np.ndarray, np.ndarray]:
    """The population grid and the best image so far, rendered in one pass (a run's own, whether
    it is packed or alone: the same pixels either way)."""
    order = grid_order(gen.cos_sim)
    images = latent_images(run.models.generator, np.concatenate([gen.latents[order], gen.best_latent[None]]))
    return image_grid(images[:-1]), image_grid(images[-1:], max_tile=None)


class LogImages(Observer):
    """Every `every` generations and at the last, the population grid and the best image so far
    (a time-stepped image: the run page shows it with a step slider); the best image and the
    final population at the end, and with several objectives the final front's images (best
    cos_sim first), `front.png`."""

    def __init__(self, every: int):
        self.every = every
        self.last: tuple[int, np.ndarray] | None = None  # the generation and best image last logged

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        if gen.index % self.every == 0 or run.done:
            grid, best = grid_and_best_image(run, gen)
            run.tracker.log_image(grid, f"{POPULATION_DIR}/gen_{gen.index:04d}.png")
            run.tracker.log_stepped_image(best, BEST_IMAGE_KEY, gen.index)
            self.last = gen.index, best

    def on_end(self, run: PackedRun, gen: Generation) -> None:
        # best.png is the last step's image of the run page's chart
        best = self.last[1] if self.last and self.last[0] == gen.index else best_image(run, gen)
        run.tracker.log_image(best, "best.png")
        fronts = {}
        if gen.front is not None:
            run.tracker.log_image(population_grid(run.models.generator, gen.latents[gen.front], gen.cos_sim[gen.front]),
                                  "front.png")
            fronts = {"objectives": gen.objectives, "front": gen.front}
        run.tracker.log_arrays("population.npz", latents=gen.latents, cos_sim=gen.cos_sim, best_latent=gen.best_latent,
                               best_cos_sim=gen.best_cos_sim, **fronts)


class LogAnimations(Observer):
    """At the end, `best.gif` and `population.gif`: the images logged at each logged generation,
    read back from the store, so that a resumed run's GIFs have the generations logged before
    it was interrupted too."""

    def on_end(self, run: PackedRun, gen: Generation) -> None:
        tracker = run.tracker
        grids = {int(match[1]): path for path in tracker.artifact_paths(POPULATION_DIR)
                 if (match := POPULATION_GRID.fullmatch(path))}
        for name, paths in (("best.gif", tracker.stepped_images(BEST_IMAGE_KEY)), ("population.gif", grids)):
            steps = spaced_steps(list(paths))
            tracker.log_gif([gif_frame(tracker.read_image(paths[step]), step) for step in steps], name, FRAME_MS)


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


class EvaluateDuring(Observer):
    """The classifier's verdict metrics (no artifacts) on the population every `every`
    generations before the last, to follow accuracy over the search."""

    def __init__(self, evaluation: Evaluation, every: int):
        self.evaluation, self.every = evaluation, every

    def on_generation(self, run: PackedRun, gen: Generation) -> None:
        if gen.index % self.every == 0 and not run.done:  # the last is EvaluateFinal's
            table, _ = self.evaluation.predictions(run.models.generator, gen.latents, gen.cos_sim)
            run.tracker.log_metrics(gen.index, summary(table))


def observers_of(cfg, evaluation: Evaluation | None, prompt: Prompt) -> list[Observer]:
    observers = [LogMetrics(Columns.of(cfg).reference(), per_term=not prompt.is_plain),
                 LogImages(cfg.log_every), LogAnimations(), SaveCheckpoints(cfg.checkpoint_every)]
    if evaluation is None:
        return observers
    every = cfg.evaluation.get("every", 0)
    return observers + ([EvaluateDuring(evaluation, every)] if every else []) + [EvaluateFinal(evaluation)]

