"""Helpers for tests that drive `python train.py` and `python pixel_ga.py` against a temporary store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from pipeline_cli import ROOT, run_script, runs_of

# tiny networks: these tests check the mechanics, not what is learned
SMALL_GAN = ["model.ngf=16", "model.ndf=16", "eval_samples=64", "sample_every=2", "eval_every=2"]


def run_entry(script: str, args: list[str], uri: str, out: Path, env: dict[str, str] | None = None,
              process: bool = False):
    return run_script(script, args, uri, out, {"OMP_NUM_THREADS": "1"} | (env or {}), process)


def compose_train(overrides: list[str]) -> DictConfig:
    """train.py's config as Hydra hands it to the task, with Hydra's own config set as it would be."""
    with initialize_config_dir(config_dir=str(ROOT / "conf" / "gan"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def run_world_quick(uri: str, out: Path):
    """`make world-quick` into `out`, tracking into `uri`, Hydra's job folders beside `out`."""
    environ = os.environ | {"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    command = ["make", "world-quick", f"PY={sys.executable}", f"WORLD_QUICK_DIR={out}",
               f"WORLD_RUNS={out.parent / 'world-runs'}"]
    return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=900)


def gan_runs(uri: str):
    """The client and every run of the `gan` experiment, newest first."""
    return runs_of(uri, "gan")


def history(client, run_id: str, key: str) -> dict[int, float]:
    return {p.step: p.value for p in client.get_metric_history(run_id, key)}
