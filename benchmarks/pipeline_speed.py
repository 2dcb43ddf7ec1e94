"""Speed of one run on the shapes world (pop 16 x 200 generations by default), and the share of
its time that is not the generator + CLIP forward pass.

Prints, per repeat:
- the run as `run_pack` sees it (models built, MLflow run opened and closed),
- the time inside the batched forward passes (`Models.scores`), and the rest: search, metrics,
  MLflow logging, population grids, checkpoints;
- optionally the wall time of `python run.py` in a fresh process (imports included).

    python benchmarks/pipeline_speed.py [--cli] [overrides ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from hydra import compose, initialize_config_dir

from latentevo.models.weights import WORLD_DIR
from latentevo.pipeline import RunSpec, run_pack
from latentevo.pipeline.models import Models

ROOT = Path(__file__).resolve().parents[1]
UNTRAINED = [] if (WORLD_DIR / "clip.safetensors").is_file() else ["clip.random_init=true"]


@contextlib.contextmanager
def forward_seconds() -> Iterator[list[float]]:
    """Inside, the seconds spent in the packs' batched forward passes add up in the list's item."""
    spent, scores = [0.0], Models.scores

    def timed(self, requests):
        start = time.perf_counter()
        try:
            return scores(self, requests)
        finally:
            spent[0] += time.perf_counter() - start

    Models.scores = timed
    try:
        yield spent
    finally:
        Models.scores = scores


def timed_run(overrides: list[str]) -> dict[str, float]:
    """One run through `run_pack`, timing its forward passes."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        spec = RunSpec.of(compose("config", overrides=overrides), "benchmark")
    with forward_seconds() as forward:
        start = time.perf_counter()
        [outcome] = run_pack([spec])
        total = time.perf_counter() - start
    assert outcome.status == "FINISHED", outcome.error
    return {"run": total, "forward": forward[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cli", action="store_true", help="also time `python run.py` in a fresh process")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        overrides = ["experiment_name=benchmark", "resume=false", *UNTRAINED, *args.overrides]
        print(f"{' '.join(args.overrides) or 'defaults'}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        timed_run(overrides)  # warm-up: the store's schema, first-call allocations and kernel selection
        results = [timed_run(overrides) for _ in range(args.repeats)]
        for r in results:
            print(f"  run {r['run']:.2f} s | forward passes {r['forward']:.2f} s | "
                  f"the rest {r['run'] - r['forward']:.2f} s "
                  f"({100 * (r['run'] / r['forward'] - 1):.1f} % over the forward)")
        if args.cli:
            start = time.perf_counter()
            subprocess.run([sys.executable, "run.py", *overrides, f"hydra.run.dir={tmp}/cli"], cwd=ROOT, check=True,
                           capture_output=True)
            print(f"python run.py, fresh process: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
