"""Helpers for tests that drive `python train.py` and `python pixel_ga.py` against a temporary store."""

from __future__ import annotations

from pathlib import Path

from pipeline_cli import run_script, runs_of

# tiny networks: these tests check the mechanics, not what is learned
SMALL_GAN = ["model.ngf=16", "model.ndf=16", "eval_samples=64", "sample_every=2", "eval_every=2"]


def run_entry(script: str, args: list[str], uri: str, out: Path, env: dict[str, str] | None = None,
              process: bool = False):
    return run_script(script, args, uri, out, {"OMP_NUM_THREADS": "1"} | (env or {}), process)


def gan_runs(uri: str):
    """The client and every run of the `gan` experiment, newest first."""
    return runs_of(uri, "gan")


def history(client, run_id: str, key: str) -> dict[int, float]:
    return {p.step: p.value for p in client.get_metric_history(run_id, key)}
