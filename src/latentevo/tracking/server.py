"""A local MLflow server (`mlflow ui`, `make mlflow-server`) as the scripts, benchmarks and tests
start one: on a free loopback port, used once its health check answers."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

import requests

from .store import TrackingError


def free_port() -> int:
    """A loopback port that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(address: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    """Returns once `address`/health answers; a TrackingError once the server's `process` has
    ended, or `timeout_s` has passed, without an answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{address}/health", timeout=2).ok:
                return
        if process.poll() is not None:
            raise TrackingError(f"the server of {address} ended (exit status {process.returncode}) before it answered")
        if time.monotonic() > deadline:
            raise TrackingError(f"{address} did not answer within {timeout_s:.0f} s")
        time.sleep(0.5)
