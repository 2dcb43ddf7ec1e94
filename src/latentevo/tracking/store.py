"""The tracking store: `paths.store`, `MLFLOW_TRACKING_URI`, the project-local SQLite default; experiments."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import requests
from filelock import FileLock
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from ..errors import LatentevoError
from ..paths import PROJECT_DIR, resolve

# Parallel jobs share one SQLite file; each waits this long for a write lock.
SQLITE_BUSY_TIMEOUT_S = 60
# MLflow 3's UI opens an experiment without this tag on a GenAI (traces) overview; with it, on
# its runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

# Schema migration and store chatter would bury the progress bars, as would MLflow's own bar
# for each artifact a run reads back (its GIFs' frames).
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class TrackingError(LatentevoError):
    """The tracking store cannot be reached or used."""


def default_tracking_uri() -> str:
    """The embedded store in the project directory: `mlflow.db`, artifacts in `mlartifacts/`."""
    return f"sqlite:///{PROJECT_DIR / 'mlflow.db'}"


def tracking_uri(store: str | None = None) -> str:
    """The store `paths.store` names: an MLflow URI, or a directory for its mlflow.db (relative to
    the project, created if missing); without one $MLFLOW_TRACKING_URI, else the project's mlflow.db."""
    if not store:
        return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if "://" in store:
        return store
    directory = resolve(store)
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'mlflow.db'}"


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def _with_busy_timeout(uri: str) -> str:
    if _sqlite_path(uri) is None or "timeout=" in uri:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}timeout={SQLITE_BUSY_TIMEOUT_S}"


def _check_reachable(uri: str) -> None:
    """Fail fast: MLflow's own client retries an unreachable server for minutes."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=5).raise_for_status()
        except requests.RequestException as err:
            raise TrackingError(f"cannot reach MLflow tracking server {uri} ({type(err).__name__}); "
                                "start it or unset MLFLOW_TRACKING_URI") from err
    db = _sqlite_path(uri)
    if db is not None and not db.parent.is_dir():
        raise TrackingError(f"MLflow tracking store {uri}: directory {db.parent} does not exist; create it or "
                            "point MLFLOW_TRACKING_URI at another store")


def _artifact_location(uri: str, experiment_name: str) -> str | None:
    """Artifacts of a SQLite store go beside the database file (MLflow's default would be
    relative to whichever directory the first run started in)."""
    db = _sqlite_path(uri)
    if db is None:
        return None
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment_name)
    return (db.parent / "mlartifacts" / folder).resolve().as_uri()


def _creation_lock(uri: str) -> contextlib.AbstractContextManager:
    """Processes meeting a fresh SQLite store race to create its tables: one at a time."""
    db = _sqlite_path(uri)
    return FileLock(f"{db}.lock") if db is not None else contextlib.nullcontext()


def open_experiment(experiment_name: str, uri: str | None = None) -> tuple[MlflowClient, str]:
    """A client on the store and the id of the experiment, created if missing (the store's
    schema too), so that parallel jobs may meet a fresh store."""
    uri = uri or tracking_uri()
    _check_reachable(uri)
    try:
        with _creation_lock(uri):
            # a client creates (or migrates) the store's tables when it is made
            client = MlflowClient(tracking_uri=_with_busy_timeout(uri))
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                try:
                    return client, client.create_experiment(experiment_name, _artifact_location(uri, experiment_name),
                                                            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
                except MlflowException:
                    # Another job (on a tracking server) created it first.
                    experiment = client.get_experiment_by_name(experiment_name)
                    if experiment is None:
                        raise
            if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before the project set it
                client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return client, experiment.experiment_id
    except (MlflowException, SQLAlchemyError, OSError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrackingError(f"cannot use MLflow tracking store {uri}: {first_line}") from err
