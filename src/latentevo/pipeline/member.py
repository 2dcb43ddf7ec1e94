"""One run inside a pack: its job (identity, lock, checkpoint), MLflow run, algorithm and random
streams. Each generation the pack asks it for candidates and tells it their fitness."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
from mlflow import MlflowClient
from omegaconf import OmegaConf
from tqdm import tqdm

from .. import prompts
from ..errors import ConfigError
from ..identity import IDENTITY_TAG, finished_run
from ..models.base import Generator
from ..resume import Job
from ..search import (
    Generation,
    GivenFitness,
    LatentProblem,
    PriorSampling,
    needs_gradient,
    state_is_picklable,
    tell,
    to_evaluate,
)
from ..tracking import RunLogger, tracked_run
from .measures import Truth, ground_truth
from .models import Models, Request, Scores, build
from .objectives import Columns
from .observers import Observer, observers_of
from .randomness import RunRandomness
from .spec import RunSpec, run_params
from .terms import BestTerms, combine_scores, prompt_text, term_params


def prior_sampler(generator: Generator) -> Callable[[int, np.random.Generator], np.ndarray]:
    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        torch_rng = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
        return generator.sample_latents(n, torch_rng).double().numpy()

    return sample


class PackedRun:
    """Opened with `open` (which may find the job already FINISHED); then `ask` and `tell` once
    a generation until `done`, then `finish`, or `fail` on any error."""

    def __init__(self, spec: RunSpec, models: Models, job: Job, lock: contextlib.ExitStack):
        self.spec, self.cfg, self.models, self.job = spec, spec.cfg, models, job
        self._lock, self._tracking = lock, contextlib.ExitStack()
        self.tracker: RunLogger | None = None
        self.last: Generation | None = None
        self.observers: list[Observer] = []
        self.truth: Truth | None = None
        # the ground-truth measures of the last generation (`measures.measured_latents`), which
        # the pack takes for all its runs at once
        self.measured: dict[str, np.ndarray] | None = None

    @classmethod
    def open(cls, spec: RunSpec, models: Models, client: MlflowClient, experiment_id: str, uri: str,
             tags: dict[str, str]) -> PackedRun | str:
        """The run, started or resumed; or, when `resume` finds the job FINISHED, that run's id."""
        job = Job.of(spec.cfg, uri)
        lock = contextlib.ExitStack()
        lock.enter_context(job.lock())
        run = cls(spec, models, job, lock)
        try:
            done = finished_run(client, experiment_id, job.identity) if spec.cfg.resume else None
            if done is not None:
                job.discard()
                lock.close()
                return done.info.run_id
            run._start(client, experiment_id, tags)
            return run
        except BaseException as err:
            run.fail(err)
            raise

    def _start(self, client: MlflowClient, experiment_id: str, tags: dict[str, str]) -> None:
        cfg, models = self.cfg, self.models
        self.prompt = prompts.of_config(cfg)
        models.check_prompt(self.prompt)
        evaluation = models.evaluation(cfg)
        self.targets, self.weights = models.targets(self.prompt), np.array(self.prompt.weights)
        self.columns = Columns.of(cfg)
        self.fitness, sample = GivenFitness(), prior_sampler(models.generator)
        # closures over the models: checkpoints refer to them by name, and get them back on load
        self.externals = {"evaluate": self.fitness, "gradient": self.fitness.gradient, "sample": sample}
        state = self.job.load(client, self.externals) if cfg.resume else None
        restored = state["algorithm"] if state else None
        self.algorithm = restored if restored is not None else build(cfg.algo, sampling=PriorSampling(sample))
        self.grad = needs_gradient(self.algorithm)
        if self.grad and not models.generator.differentiable:
            raise ConfigError(f"algo={self.spec.choices.get('algo', 'adam')} follows the gradient, and generator="
                              f"{self.spec.choices.get('generator', cfg.generator._target_)} is not differentiable; "
                              "use a differentiable one (dcgan_shapes, trained_gan, biggan_*, stylegan2_*)")
        self.random = RunRandomness(cfg.seed, cfg.augment.get("seed", cfg.seed) if cfg.augment else cfg.seed)
        if restored is not None:
            self.random.restore(state["rng"])
        self.terms = BestTerms.restore(state.get("terms") if state else None)
        self.truth = ground_truth(models.generator, self.prompt)
        self.observers = observers_of(cfg, evaluation, self.prompt)

        tags = tags | {"hydra_overrides": " ".join(self.spec.overrides), IDENTITY_TAG: self.job.identity}
        self.tracker = self._tracking.enter_context(
            tracked_run(client, experiment_id, self.spec.name, tags, resume_run_id=state and state["run_id"]))
        if state is None:
            self.tracker.log_params(run_params(cfg, self.spec.choices))
            self.tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
            if not self.prompt.is_plain:
                self.tracker.log_params(term_params(self.prompt))
                self.tracker.log_text(prompt_text(self.prompt), "prompt_terms.txt")
        else:
            how = "restoring its search state" if restored is not None else "replaying its generations from the seed"
            tqdm.write(f"{self.spec.prefix}resuming MLflow run {self.tracker.run_id} ({self.spec.name}) "
                       f"after generation {state['generation']}, {how}")
            self.tracker.log_points(state["pending"])
        if restored is None:
            problem = LatentProblem(self.fitness, models.generator.latent_dim, models.generator.latent_bound,
                                    self.externals["gradient"], n_obj=len(self.columns.names))
            with self.random.active():
                self.algorithm.setup(problem, termination=("n_gen", cfg.generations), seed=cfg.seed, verbose=False)

    @property
    def generation(self) -> int:
        """Generations told so far."""
        return self.algorithm.n_iter - 1 if self.algorithm.n_iter else 0

    @property
    def done(self) -> bool:
        return not self.algorithm.has_next()

    def ask(self) -> Request:
        with self.random.active():
            self._infills = self.algorithm.ask()
        self._asked = to_evaluate(self.algorithm, self._infills)
        views = self.models.scorer.draw_views(len(self._asked), self.random.views)
        return Request(self._asked, self.targets, views, self.grad)

    def tell(self, scores: Scores) -> Generation:
        """Told the asked latents' scores: their (n, T) cos_sims to the run's targets, combined here.
        The pack then has the generation observed (`observe`)."""
        combined = combine_scores(scores, self.weights)
        self.fitness.give(self._asked, self.columns.values(combined), combined.gradient)
        with self.random.active():
            gen = tell(self.algorithm, self._infills, self.columns.fitness)
        self.terms.update(self._asked, scores.terms, gen)
        self.last = gen
        return gen

    def observe(self, measured: dict[str, np.ndarray] | None) -> None:
        """The observers of the last generation told, given its ground-truth measures."""
        self.measured = measured
        for observer in self.observers:
            observer.on_generation(self, self.last)

    def save_checkpoint(self, index: int) -> None:
        algorithm = self.algorithm if state_is_picklable(self.algorithm) else None
        state = {"run_id": self.tracker.run_id, "generation": index, "algorithm": algorithm, "rng": self.random.state(),
                 "terms": self.terms.state(),
                 # metrics not yet sent: kept here until the store has them
                 "pending": self.tracker.pending()}
        self.job.save(state, self.externals)

    def finish(self) -> str:
        """Logs the end artifacts, marks the run FINISHED, drops its checkpoint; returns where
        the best image is."""
        for observer in self.observers:
            observer.on_end(self, self.last)
        best_image = self.tracker.artifact_location("best.png")
        self._tracking.close()
        self.job.discard()
        self._lock.close()
        return best_image

    def fail(self, err: BaseException) -> None:
        """Ends the MLflow run as the error says (KILLED for an interrupt, else FAILED), keeping
        what it logged, and releases the job."""
        try:
            self._tracking.__exit__(type(err), err, err.__traceback__)
        finally:
            self._lock.close()
