"""Session-wide test settings. The suite runs on pytest-xdist's workers (pyproject's addopts:
`-n logical --dist loadscope`): one worker a core, each test module on one worker, so that its
module-scoped fixtures are built once. Every test keeps its files in its own temporary folders."""

import os
import shutil
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient


def pytest_configure(config):
    """Each worker's in-process torch work gets its share of the cores (torch takes them all)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


@pytest.fixture(scope="session", autouse=True)
def private_checkpoint_key(tmp_path_factory):
    """Runs sign their checkpoints with a key under XDG_CONFIG_HOME: the tests' runs (and the CLI
    processes they start, which inherit it) use one of their own, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        yield


@pytest.fixture(scope="session")
def new_store(tmp_path_factory):
    """`new_store(directory)`: the URI of a fresh SQLite tracking store in `directory`. MLflow
    takes a second or two to build a store's schema; each is a copy of one built once."""
    empty = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    MlflowClient(f"sqlite:///{empty}").search_experiments()

    def new(directory: Path) -> str:
        shutil.copyfile(empty, directory / "mlflow.db")
        return f"sqlite:///{directory / 'mlflow.db'}"

    return new


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store):
    """A SQLite tracking store for one test module."""
    return new_store(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture
def tracking(store, monkeypatch):
    """The module's store as the runs' tracking store, for in-process runs."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    return store


@pytest.fixture(scope="session")
def world_quick(tmp_path_factory):
    """`make world-quick` into a fresh directory and a fresh store (which its two parallel
    train.py processes meet at once): the store's URI, the directory, and make's result. Its
    tests share a module, and so a worker."""
    from gan_cli import run_world_quick

    root = tmp_path_factory.mktemp("world-quick")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return uri, root / "world", run_world_quick(uri, root / "world")
