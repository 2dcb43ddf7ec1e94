"""The main job packed against one job per process, each against the bare-forward floor of the
same images on the same cores, measured side by side in one run:

- bare forward: images/s of the shapes generator + mini-CLIP on one thread at several batch
  sizes; the floor is the time `workers` processes take to forward the sweep's images at the
  best of them, side by side;
- `python run.py -m algo=ga,de "seed=range(S)"` with the packed launcher (the default) and with
  `hydra/launcher=parallel` (joblib, one job per process), each into a fresh store: wall time,
  ratio to the floor, the largest process's peak RSS and its RSS over the sweep (flat or not);
- with `--slurm-uri`, the same sweep through `hydra/launcher=slurm` (one pack per core, as
  Slurm tasks of one CPU each) into that tracking server: wall time from the command to its end;
- one pack in-process: the share of its time spent outside the forward passes (search,
  metrics, MLflow, grids, checkpoints).

    python benchmarks/packed_sweep.py                       # the main job: 50 seeds x 200 generations
    python benchmarks/packed_sweep.py --seeds 10 --generations 50 --skip-parallel
    python benchmarks/packed_sweep.py --slurm-uri http://127.0.0.1:5000   # make slurm-up and a server first
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from pipeline_speed import forward_seconds

from latentevo.models.clip import shapes_clip
from latentevo.models.shapes import ShapesGenerator
from latentevo.pipeline import RunSpec, run_pack

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (16, 32, 64, 128, 256, 800)


def forward(n_images: int, batch: int) -> float:
    """Seconds one thread takes to render and score `n_images` prior draws, `batch` at a time."""
    torch.set_num_threads(1)
    generator, scorer = ShapesGenerator(), shapes_clip()
    text = scorer.embed_text(["a red circle"])[0]
    z = generator.sample_latents(n_images, torch.Generator().manual_seed(0))
    with torch.inference_mode():
        scorer.cos_sim(generator(z[:batch]), text)  # warm-up
        start = time.perf_counter()
        for part in z.split(batch):
            scorer.cos_sim(generator(part), text)
    return time.perf_counter() - start


def floor_seconds(n_images: int, batch: int, workers: int) -> float:
    """Wall time of `workers` processes forwarding n_images between them, side by side."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return max(pool.starmap(forward, [(n_images // workers, batch)] * workers))


def cpu_model() -> str:
    """The CPU's model and widest vector unit: the forward pass's speed, and with it every ratio
    here, differs between machines by more than the changes measured."""
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}
    flags = fields.get("flags", "").split()
    vector = next((flag for flag in ("avx512f", "avx2", "avx") if flag in flags), "no AVX")
    return f"{fields.get('model name', 'unknown CPU')} ({vector})"


def descendants(pid: int) -> list[int]:
    children = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        children.setdefault(int(fields["PPid"]), []).append(int(fields["Pid"]))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def sweep(args: list[str], seeds: int, generations: int, uri: str | None = None) -> dict:
    """`python run.py -m algo=ga,de seed=range(seeds)` into a fresh store (or `uri`), the RSS of
    its processes sampled (a Slurm task's processes are not among them)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"MLFLOW_TRACKING_URI": uri or f"sqlite:///{tmp}/mlflow.db"}
        command = [sys.executable, "run.py", "-m", "algo=ga,de", f"seed=range({seeds})", f"generations={generations}",
                   f"hydra.sweep.dir={tmp}/sweep", *args]
        log = Path(tmp) / "stderr.log"  # the progress bars: a pipe left unread would fill and block the sweep
        start = time.perf_counter()
        with log.open("w") as err:
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
            samples: dict[int, list[float]] = {}
            while proc.poll() is None:
                for pid in [proc.pid, *descendants(proc.pid)]:
                    samples.setdefault(pid, []).append(rss_mb(pid))
                time.sleep(1.0)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"sweep {' '.join(args)} failed:\n{log.read_text()[-2000:]}")
    largest = max(samples.values(), key=max)
    tenth = max(1, len(largest) // 10)
    return {"wall": wall, "peak_mb": max(largest),
            "rss_at": [largest[tenth], largest[len(largest) // 2], largest[-tenth]]}


def pack_share(runs: int, generations: int) -> tuple[float, float]:
    """(seconds, forward seconds) of one in-process pack of `runs` runs."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        specs = [RunSpec.of(compose("config", overrides=[f"seed={s}", f"algo={'ga' if s % 2 else 'de'}",
                                                            f"generations={generations}", "experiment_name=share"]),
                            f"{s}")
                 for s in range(runs)]
    with forward_seconds() as spent:
        start = time.perf_counter()
        run_pack(specs)
        return time.perf_counter() - start, spent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--skip-parallel", action="store_true", help="do not time hydra/launcher=parallel")
    parser.add_argument("--skip-packed", action="store_true", help="do not time the packed launcher")
    parser.add_argument("--slurm-uri", help="also time hydra/launcher=slurm, tracking into this server")
    args = parser.parse_args()
    runs = 2 * args.seeds
    images = runs * args.generations * 16
    print(f"main job: {runs} runs x {args.generations} generations x pop 16 = {images:,} images; {args.workers} cores "
          f"of {cpu_model()}, load average {os.getloadavg()[0]:.2f}", flush=True)

    rates = {b: 3200 / forward(3200, b) for b in BATCHES}
    print("bare forward, one thread: " + ", ".join(f"batch {b} {r:.0f} images/s" for b, r in rates.items()), flush=True)
    best = max(rates, key=rates.get)
    floor = floor_seconds(images, best, args.workers)
    print(f"floor: {floor:.1f} s ({args.workers} processes side by side at batch {best})", flush=True)

    launchers = ({} if args.skip_packed else {"packed": []}) | \
        ({} if args.skip_parallel else {"parallel": ["hydra/launcher=parallel"]})
    if args.slurm_uri:
        launchers["slurm"] = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1",
                              f"hydra.launcher.pack_size={math.ceil(runs / args.workers)}",
                              f"experiment_name=bench_slurm_{int(time.time())}"]
    for name, extra in launchers.items():
        r = sweep(extra, args.seeds, args.generations, args.slurm_uri if name == "slurm" else None)
        memory = "" if name == "slurm" else (
            f" | largest process: peak RSS {r['peak_mb']:.0f} MB, RSS at 10/50/90 % of the sweep "
            f"{' / '.join(f'{m:.0f}' for m in r['rss_at'])} MB")
        print(f"{name:8s}: {r['wall']:.1f} s = {r['wall'] / floor:.2f} x the floor{memory}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        total, spent = pack_share(runs // args.workers, min(args.generations, 50))
    print(f"one pack of {runs // args.workers} runs in-process: {total:.1f} s, of which forward {spent:.1f} s; "
          f"search, metrics, MLflow, grids and checkpoints {100 * (1 - spent / total):.0f} %", flush=True)


if __name__ == "__main__":
    main()
