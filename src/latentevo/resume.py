"""Resumable jobs. Running a job again (its identity: `latentevo.identity`) skips it when a run
with the same identity FINISHED, resumes it from its checkpoint when it was interrupted, and
starts it otherwise. A lock keeps two processes off the same job."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from filelock import FileLock, Timeout
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from .errors import LatentevoError
from .identity import job_identity
from .paths import PROJECT_DIR, resolve
from .prompts import image_file
from .search import CheckpointError, load_checkpoint, save_checkpoint


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def checkpoint_root(configured: str | None, uri: str) -> Path:
    """`paths.checkpoints` if set; else beside a SQLite store's database (and its artifacts), or
    under the project's checkpoints/ per tracking server."""
    if configured:
        return resolve(configured).resolve()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).parent / "checkpoints"
    return PROJECT_DIR / "checkpoints" / _slug(urlparse(uri).netloc or uri)


@dataclass(frozen=True)
class Job:
    identity: str
    checkpoint: Path  # <root>/<experiment>/<identity>.ckpt, its lock beside it

    @classmethod
    def of(cls, cfg: DictConfig, uri: str) -> Job:
        """The job of a run.py config, as `RunSpec.of` resolved it."""
        image = image_file(cfg.get("image_prompt"))  # an image prompt's contents, as weights count
        identity = job_identity(cfg, [image] if image else [])
        root = checkpoint_root(cfg.paths.checkpoints, uri)
        return cls(identity, root / _slug(cfg.experiment_name) / f"{identity}.ckpt")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while the job runs; the OS releases it when the process dies, even by kill -9."""
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.checkpoint.with_suffix(".lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise LatentevoError(f"another process is running this job (it holds {lock.lock_file}); "
                              "wait for it to end or stop it, then run again") from None
        try:
            yield
        finally:
            lock.release()

    def save(self, state: Mapping[str, Any], externals: Mapping[str, object]) -> None:
        save_checkpoint(self.checkpoint, state, self.identity, externals)

    def load(self, client: MlflowClient, externals: Mapping[str, object]) -> dict[str, Any] | None:
        """The checkpoint's state if there is one, after checking that its run still exists."""
        if not self.checkpoint.is_file():
            return None
        state = load_checkpoint(self.checkpoint, self.identity, externals)
        try:
            client.get_run(state["run_id"])
        except MlflowException:
            raise CheckpointError(f"checkpoint {self.checkpoint} resumes MLflow run {state['run_id']}, which the "
                                  f"store {client.tracking_uri} does not have; "
                                  "delete the checkpoint to start afresh") from None
        return state

    def discard(self) -> None:
        self.checkpoint.unlink(missing_ok=True)

