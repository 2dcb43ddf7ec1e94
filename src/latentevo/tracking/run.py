"""One tracked MLflow run: start, batched metrics, artifacts, and an end state that is never
left RUNNING (FINISHED, FAILED on an exception, KILLED on Ctrl-C)."""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Iterator, Mapping
from urllib.parse import unquote, urlparse

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag

# log_batch accepts at most 1000 metrics and 100 params per call.
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100


class RunLogger:
    """Logs into one run; metrics are buffered and sent in batches."""

    def __init__(self, client: MlflowClient, run_id: str, flush_every_s: float = 2.0):
        self.client, self.run_id, self.flush_every_s = client, run_id, flush_every_s
        self._metrics: list[Metric] = []
        self._last_flush = time.monotonic()

    def log_params(self, params: Mapping[str, object], tags: Mapping[str, str] | None = None) -> None:
        entries = [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(entries), MAX_BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=entries[start : start + MAX_BATCH_PARAMS])
        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        self._metrics += [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if len(self._metrics) >= MAX_BATCH_METRICS or time.monotonic() - self._last_flush > self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        while self._metrics:
            batch, self._metrics = self._metrics[:MAX_BATCH_METRICS], self._metrics[MAX_BATCH_METRICS:]
            self.client.log_batch(self.run_id, metrics=batch)
        self._last_flush = time.monotonic()

    def log_image(self, image: np.ndarray, artifact_file: str) -> None:
        """(H, W, 3) uint8 image as a PNG artifact."""
        self.client.log_image(self.run_id, image, artifact_file=artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_arrays(self, name: str, **arrays: np.ndarray) -> None:
        """Arrays in one compressed .npz artifact, `name`, at the artifact root."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            np.savez_compressed(path, **arrays)
            self.client.log_artifact(self.run_id, str(path))

    def artifact_location(self, artifact_file: str) -> str:
        """A local path for artifacts in a local store, else the artifact URI."""
        uri = f"{self.client.get_run(self.run_id).info.artifact_uri}/{artifact_file}"
        parsed = urlparse(uri)
        return unquote(parsed.path) if parsed.scheme in ("", "file") else uri


@contextlib.contextmanager
def tracked_run(
    client: MlflowClient, experiment_id: str, run_name: str, tags: Mapping[str, str] | None = None
) -> Iterator[RunLogger]:
    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
    logger = RunLogger(client, run.info.run_id)
    status = RunStatus.FAILED
    try:
        yield logger
        logger.flush()
        status = RunStatus.FINISHED
    except KeyboardInterrupt:
        status = RunStatus.KILLED
        raise
    finally:
        if status != RunStatus.FINISHED:
            # Keep what was measured before the failure; the failure itself is what matters.
            with contextlib.suppress(Exception):
                logger.flush()
        client.set_terminated(logger.run_id, RunStatus.to_string(status))
