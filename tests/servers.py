"""Real servers for tests: the project's `make mlflow-server` on a free loopback port."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests
from pipeline_cli import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{uri}/health", timeout=2).ok:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, (
                (directory.parent / f"server-{port}.log").read_text())
            time.sleep(0.5)
        yield uri, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
