"""The run loop: a pack of runs sharing one generator and scorer, evolved in lockstep. Each
generation every live run is asked for its candidates, all candidates go through the models in
one batched pass, and each run is told its own fitness; a run that ends or fails leaves the
pack, the others go on. `python run.py` is a pack of one."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..errors import LatentevoError, storage_error
from ..search import Generation
from ..tracking import open_experiment, provenance_tags, tracking_uri
from .measures import measured_latents, scene_labels
from .member import PackedRun
from .models import Models
from .spec import RunSpec

#: a pack sends each run's metrics at most this often per run in it (seconds): a pack makes
#: about one store call every 3 s, whatever its size (a call costs tens of ms, mostly fixed);
#: checkpoints keep what is unsent
FLUSH_SECONDS_PER_RUN = 3.0
MIN_FLUSH_SECONDS = 2.0


@dataclass
class Outcome:
    """How a job of the pack ended: FINISHED, SKIPPED (an earlier run FINISHED) or FAILED."""

    spec: RunSpec
    status: str
    run_id: str | None = None
    best_cos_sim: float = math.nan
    error: BaseException | None = None


class Preempted(KeyboardInterrupt):
    """The scheduler takes the pack's allocation back (a time limit, a preemption): every live
    run has saved its checkpoint and ends KILLED, to resume where it stopped."""


def skipped_line(prefix: str, name: str, run_id: str) -> str:
    return (f"{prefix}skipped {name}: MLflow run {run_id} with the same config already FINISHED "
            "(resume=false runs it again)")


def user_error(err: BaseException) -> BaseException:
    """Errors with a known cause as the one-line errors the user sees."""
    if isinstance(err, OSError):
        return storage_error(err)
    if isinstance(err, MemoryError):
        return LatentevoError(f"out of memory ({str(err).strip() or 'MemoryError'}); lower pop_size or batch_size")
    return err


class Pack:
    def __init__(self, specs: list[RunSpec], title: str = "", position: int = 0,
                 stop: Callable[[], bool] | None = None):
        self.specs, self.title, self.position = specs, title, position
        # asked between generations: true when the pack must checkpoint its runs and stop
        self.stop = stop
        self.outcomes: dict[int, Outcome] = {}
        self.live: dict[int, PackedRun] = {}
        self.best = -math.inf  # best cos_sim of any run so far

    def run(self) -> list[Outcome]:
        try:
            models = Models.of(self.specs[0].cfg)
        except Exception as err:  # the shared models: every run of the pack fails with them
            for i, spec in enumerate(self.specs):
                self._failed(i, spec, err)
            return self._in_order()
        self._open_all(models)
        try:
            self._evolve(models)
        except BaseException as err:  # Ctrl-C, SIGTERM: every live run KILLED
            for run in self.live.values():
                run.fail(err)
            raise
        return self._in_order()

    def _open_all(self, models: Models) -> None:
        experiments = {}
        tags = provenance_tags() | {"device": str(models.device), "mlflow.source.name": "run.py"}
        for i, spec in enumerate(self.specs):
            try:
                uri, name = tracking_uri(spec.cfg.paths.store), spec.cfg.experiment_name
                if (uri, name) not in experiments:
                    experiments[uri, name] = open_experiment(name, uri)
                opened = PackedRun.open(spec, models, *experiments[uri, name], uri, tags)
            except Exception as err:
                self._failed(i, spec, err)
                continue
            if isinstance(opened, str):
                client = experiments[uri, name][0]
                self.outcomes[i] = Outcome(spec, "SKIPPED", opened, self._finished_best(client, opened))
                tqdm.write(skipped_line(spec.prefix, spec.name, opened))
            else:
                self.live[i] = opened
        flush_every = max(MIN_FLUSH_SECONDS, FLUSH_SECONDS_PER_RUN * len(self.live))
        for run in self.live.values():
            run.tracker.flush_every_s = flush_every

    @staticmethod
    def _finished_best(client, run_id: str) -> float:
        return client.get_run(run_id).data.metrics.get("best_cos_sim", math.nan)

    def _evolve(self, models: Models) -> None:
        total = max((run.cfg.generations for run in self.live.values()), default=0)
        start = min((run.generation for run in self.live.values()), default=0)
        with tqdm(total=total, initial=start, desc=self._desc(), unit="gen", dynamic_ncols=True,
                  position=self.position, leave=True) as bar:
            while self.live:
                if self.stop is not None and self.stop():
                    self._suspend()
                told = self._generation(models)
                self.best = max([self.best, *(gen.best_cos_sim for gen in told.values())])
                for i in told:
                    if self.live[i].done:
                        self._finish(i)
                bar.n = max((run.generation for run in self.live.values()), default=bar.total)
                bar.set_postfix_str(self._postfix(), refresh=False)
                bar.refresh()

    def _generation(self, models: Models) -> dict[int, Generation]:
        """One generation of every live run: asked, scored together, told, measured together,
        observed; the generations of the runs that got through it."""
        asked = self._each(lambda i, run: run.ask())
        try:
            scores = dict(zip(asked, models.scores(list(asked.values()))))
        except Exception as err:  # the shared forward pass: every run asked fails with it
            return self._fail_all(asked, err)
        told = self._each(lambda i, run: run.tell(scores[i]), among=asked)
        try:
            measured = self._ground_truth(models, told)
        except Exception as err:  # the shared labelling, likewise
            return self._fail_all(told, err)
        observed = self._each(lambda i, run: run.observe(measured.get(i)), among=told)
        return {i: told[i] for i in observed}

    def _fail_all(self, indices, err: Exception) -> dict:
        for i in indices:
            run = self.live.pop(i)
            self._failed(i, run.spec, err, run)
        return {}

    def _ground_truth(self, models: Models, told: dict[int, Generation]) -> dict[int, dict[str, np.ndarray]]:
        """Each told run's ground-truth measures of its generation: all the runs' latents labelled
        in one call, rather than a small call per run."""
        measuring = {i: measured_latents(gen) for i, gen in told.items() if self.live[i].truth is not None}
        if not measuring:
            return {}
        labels = scene_labels(models.generator, np.concatenate(list(measuring.values())))
        bounds = np.cumsum([0, *(len(latents) for latents in measuring.values())])
        return {i: self.live[i].truth.of_labels({a: v[start:stop] for a, v in labels.items()})
                for i, start, stop in zip(measuring, bounds[:-1], bounds[1:])}

    def _suspend(self) -> None:
        """Checkpoints every live run at its last generation, then stops the pack."""
        for run in self.live.values():
            if run.cfg.resume and run.last is not None:
                run.save_checkpoint(run.last.index)
        generations = sorted({run.last.index + 1 for run in self.live.values() if run.last is not None})
        raise Preempted(f"stopped after generation {generations[-1] if generations else 0} to be requeued; "
                        f"{len(self.live)} runs checkpointed")

    def _each(self, step: Callable[[int, PackedRun], object], among=None) -> dict[int, object]:
        """`step` of every live run (of `among`); a run whose step raises fails and leaves."""
        results = {}
        for i in list(among if among is not None else self.live):
            run = self.live[i]
            try:
                results[i] = step(i, run)
            except Exception as err:
                del self.live[i]
                self._failed(i, run.spec, err, run)
        return results

    def _finish(self, i: int) -> None:
        run = self.live.pop(i)
        try:
            best_image = run.finish()
        except Exception as err:
            self._failed(i, run.spec, err, run)
            return
        best = run.last.best_cos_sim
        self.outcomes[i] = Outcome(run.spec, "FINISHED", run.tracker.run_id, best)
        tqdm.write(f"{run.spec.prefix}best cos_sim {best:.4f} | best image {best_image} | "
                   f"MLflow run {run.tracker.run_id}")

    def _failed(self, i: int, spec: RunSpec, err: Exception, run: PackedRun | None = None) -> None:
        if run is not None:
            run.fail(err)
        err = user_error(err)
        self.outcomes[i] = Outcome(spec, "FAILED", run.tracker.run_id if run and run.tracker else None, error=err)
        if spec.label:
            tqdm.write(f"{spec.label} ({spec.name}) failed: {err}")

    def _desc(self) -> str:
        if len(self.specs) == 1:
            return self.specs[0].title
        return f"{self.title or 'pack'} ({len(self.specs)} runs)"

    def _postfix(self) -> str:
        if len(self.specs) == 1:
            return f"best cos_sim {self.best:.4f}"
        ended = sum(o.status == "FINISHED" for o in self.outcomes.values())
        return f"finished {ended}/{len(self.specs)} | best cos_sim {self.best:.4f}"

    def _in_order(self) -> list[Outcome]:
        return [self.outcomes[i] for i in range(len(self.specs))]


def run_pack(specs: list[RunSpec], title: str = "", position: int = 0,
             stop: Callable[[], bool] | None = None) -> list[Outcome]:
    """Runs the jobs together (they must share a pack key); one outcome per spec, in order.
    `stop`, asked between generations, suspends the pack (`Preempted`)."""
    return Pack(specs, title, position, stop).run()
