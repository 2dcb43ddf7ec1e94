"""Speed of one run on the shapes world: pop 16 x 200 generations.

Prints (targets from the issue: run <= 10 s on 2 CPU cores, loop overhead <= 20 %):
- the run's loop time (every generation: search, metrics, MLflow logging, population grids),
- the bare generator + CLIP forward passes over the very same latent batches, replayed,
- the overhead of the first over the second,
- the whole run as `run()` sees it (models built, MLflow run opened and closed),
- optionally the wall time of `python run.py` in a fresh process (imports included).

    python benchmarks/pipeline_speed.py [--cli] [overrides ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

import latentevo.experiment as experiment
from latentevo.models.weights import WORLD_DIR
from latentevo.tracking import open_experiment

ROOT = Path(__file__).resolve().parents[1]
UNTRAINED = [] if (WORLD_DIR / "clip.safetensors").is_file() else ["clip.random_init=true"]


def compose_run(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def timed_run(cfg) -> dict[str, float]:
    """One run through `experiment.run`, recording its fitness batches and loop time."""
    batches: list[np.ndarray] = []
    timings: dict[str, float] = {}
    make_fitness, evolve_tracked = experiment.fitness, experiment.evolve_tracked

    def recording_fitness(*args, **kwargs):
        evaluate = make_fitness(*args, **kwargs)
        timings["replay"] = lambda: [evaluate(b) for b in batches]

        def record(latents):
            batches.append(latents.copy())
            return evaluate(latents)

        return record

    def timed_loop(*args, **kwargs):
        start = time.perf_counter()
        best = evolve_tracked(*args, **kwargs)
        timings["loop"] = time.perf_counter() - start
        return best

    experiment.fitness, experiment.evolve_tracked = recording_fitness, timed_loop
    try:
        start = time.perf_counter()
        experiment.run(cfg)
        timings["run"] = time.perf_counter() - start
    finally:
        experiment.fitness, experiment.evolve_tracked = make_fitness, evolve_tracked
    start = time.perf_counter()
    timings.pop("replay")()
    timings["bare"] = time.perf_counter() - start
    timings["batches"] = len(batches)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cli", action="store_true", help="also time `python run.py` in a fresh process")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        open_experiment("benchmark", uri)
        cfg = compose_run(["experiment_name=benchmark", *UNTRAINED, *args.overrides])
        print(f"pop {cfg.pop_size} x {cfg.generations} generations, algo {cfg.algo._target_.rsplit('.', 1)[-1]}, "
              f"{cfg.threads} torch thread(s), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        timed_run(cfg)  # warm-up: first-call allocations and kernel selection
        results = [timed_run(cfg) for _ in range(args.repeats)]
        for r in results:
            print(f"  loop {r['loop']:.2f} s | bare forward passes {r['bare']:.2f} s over {r['batches']} batches | "
                  f"overhead {100 * (r['loop'] / r['bare'] - 1):.1f} % | run() {r['run']:.2f} s")
        best = min(results, key=lambda r: r["loop"])
        print(f"best of {args.repeats}: loop {best['loop']:.2f} s, overhead {100 * (best['loop'] / best['bare'] - 1):.1f} %, "
              f"run() {best['run']:.2f} s")
        if args.cli:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "run.py", "experiment_name=benchmark", *UNTRAINED, *args.overrides,
                 f"hydra.run.dir={tmp}/cli"],
                cwd=ROOT, check=True, capture_output=True,
            )
            print(f"python run.py, fresh process: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
