"""Session-wide test settings."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_checkpoint_key(tmp_path_factory):
    """Runs sign their checkpoints with a key under XDG_CONFIG_HOME: the tests' runs (and the CLI
    processes they start, which inherit it) use one of their own, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        yield
