"""Real servers for tests: the project's `make mlflow-server` on a free loopback port."""

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from pipeline_cli import ROOT

from latentevo.tracking import TrackingError
from latentevo.tracking.server import free_port, wait_until_serving

__all__ = ["free_port", "mlflow_server"]


@contextlib.contextmanager
def mlflow_server(directory: Path, port: int, **make_vars: object):
    """`make mlflow-server` (with `make_vars`, e.g. BACKEND=postgresql) in its own process group,
    stopped with it."""
    log = open(directory.parent / f"server-{port}.log", "ab")
    proc = subprocess.Popen(
        ["make", "-s", "mlflow-server", f"MLFLOW_PORT={port}", f"MLFLOW_SERVER_DIR={directory}",
         *(f"{k}={v}" for k, v in make_vars.items())],
        cwd=ROOT, stdout=log, stderr=log, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_serving(uri, proc)
        except TrackingError as err:
            raise AssertionError(f"{err}\n{(directory.parent / f'server-{port}.log').read_text()}") from None
        yield uri, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
