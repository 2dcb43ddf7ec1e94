"""Session-wide test settings."""

import pytest

from latentevo.tracking import open_experiment


@pytest.fixture(scope="session", autouse=True)
def private_checkpoint_key(tmp_path_factory):
    """Runs sign their checkpoints with a key under XDG_CONFIG_HOME: the tests' runs (and the CLI
    processes they start, which inherit it) use one of their own, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite tracking store for one test module: creating its schema takes seconds."""
    path = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    open_experiment("warmup", uri)
    return uri


@pytest.fixture
def tracking(store, monkeypatch):
    """The module's store as the runs' tracking store, for in-process runs."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    return store


@pytest.fixture(scope="session")
def world_quick(tmp_path_factory):
    """`make world-quick` into a fresh directory and a fresh store (which its two parallel
    train.py processes meet at once): the store's URI, the directory, and make's result."""
    from gan_cli import run_world_quick

    root = tmp_path_factory.mktemp("world-quick")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return uri, root / "world", run_world_quick(uri, root / "world")
