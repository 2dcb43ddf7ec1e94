"""Resumable jobs. A job's identity is a hash of its resolved config, minus the keys that only say
how it runs; running a job again skips it when a run with the same identity FINISHED, resumes it
from its checkpoint when it was interrupted, and starts it otherwise. A lock keeps two processes
off the same job."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import urlparse

from filelock import FileLock, Timeout
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from .errors import LatentevoError
from .search import CheckpointError, load_checkpoint, save_checkpoint
from .paths import PROJECT_DIR

#: keys that change how a job runs but not what it computes
NOT_IDENTITY = ("threads", "checkpoint_every", "checkpoint_dir", "resume", "weights")
#: the MLflow tag that holds a run's config identity
IDENTITY_TAG = "config_hash"


def config_hash(cfg: DictConfig) -> str:
    values = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_IDENTITY:
        values.pop(key, None)
    for node in values.values():  # where a model looks for its weights, not which weights
        if isinstance(node, dict):
            node.pop("weights", None)
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def checkpoint_root(configured: str | None, uri: str) -> Path:
    """`checkpoint_dir` if set; else beside a SQLite store's database (and its artifacts), or
    under the project's checkpoints/ per tracking server."""
    if configured:
        return Path(configured).expanduser().resolve()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).parent / "checkpoints"
    return PROJECT_DIR / "checkpoints" / _slug(urlparse(uri).netloc or uri)


@dataclass(frozen=True)
class Job:
    config_hash: str
    checkpoint: Path  # <root>/<experiment>/<config hash>.ckpt, its lock beside it

    @classmethod
    def of(cls, cfg: DictConfig, uri: str) -> Job:
        digest = config_hash(cfg)
        root = checkpoint_root(cfg.checkpoint_dir, uri)
        return cls(digest, root / _slug(cfg.experiment_name) / f"{digest}.ckpt")

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

    def finished_run(self, client: MlflowClient, experiment_id: str) -> Run | None:
        found = client.search_runs(
            [experiment_id], f"tags.{IDENTITY_TAG} = '{self.config_hash}' and attributes.status = 'FINISHED'",
            max_results=1,
        )
        return found[0] if found else None

    def save(self, state: Mapping[str, Any], externals: Mapping[str, object]) -> None:
        save_checkpoint(self.checkpoint, state, self.config_hash, externals)

    def load(self, client: MlflowClient, externals: Mapping[str, object]) -> dict[str, Any] | None:
        """The checkpoint's state if there is one, after checking that its run still exists."""
        if not self.checkpoint.is_file():
            return None
        state = load_checkpoint(self.checkpoint, self.config_hash, externals)
        try:
            client.get_run(state["run_id"])
        except MlflowException:
            raise CheckpointError(f"checkpoint {self.checkpoint} resumes MLflow run {state['run_id']}, which the "
                                  f"store {client.tracking_uri} does not have; delete the checkpoint to start afresh") from None
        return state

    def discard(self) -> None:
        self.checkpoint.unlink(missing_ok=True)

