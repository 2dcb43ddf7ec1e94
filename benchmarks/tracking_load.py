"""How many metric points a second the tracking server takes when many runs log at once, with
a SQLite and a PostgreSQL store side by side in one run (`make mlflow-server BACKEND=...`, each
started here on free loopback ports in a temporary directory):

- `runs` runs log at once from `processes` client processes (threads within each), every run
  one `log_batch` of `metrics` metrics per generation, as an unpacked run flushing every
  generation would (packs send far less often: about one call a second per pack);
- printed: the sustained rate (points/s over the whole load), calls/s, the slowest call, and
  whether every point arrived exactly once.

    python benchmarks/tracking_load.py                      # 32 runs x 100 generations x 6 metrics
    python benchmarks/tracking_load.py --runs 64 --generations 50
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlflow import MlflowClient

from latentevo.tracking import TrackingError, open_experiment, tracked_run
from latentevo.tracking.server import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def server(directory: Path, backend: str):
    """`make mlflow-server BACKEND=backend` until the block ends (PostgreSQL stopped after)."""
    port, pg_port = free_port(), free_port()
    log = (directory / f"{backend}.log").open("w")
    proc = subprocess.Popen(["make", "-s", "mlflow-server", f"BACKEND={backend}", f"MLFLOW_PORT={port}",
                             f"PG_PORT={pg_port}", f"MLFLOW_SERVER_DIR={directory / backend}"],
                            cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_serving(uri, proc)
        except TrackingError as err:
            raise SystemExit(f"the {backend} server did not start ({err}):\n"
                             f"{(directory / f'{backend}.log').read_text()[-2000:]}") from None
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        if backend == "postgresql":
            subprocess.run(["cluster/postgres.sh", "down", str(directory / backend / "postgres"), str(pg_port)],
                           cwd=ROOT)
        log.close()


def log_runs(uri: str, experiment: str, first: int, count: int, generations: int, metrics: int) -> list[float]:
    """`count` runs logging at once from this process's threads; the duration of every call."""
    client, experiment_id = open_experiment(experiment, uri)
    calls: list[float] = []

    def one(i: int) -> None:
        with tracked_run(client, experiment_id, f"run_{i}") as run:
            run.flush_every_s = 0  # one log_batch per generation
            for step in range(generations):
                start = time.perf_counter()
                run.log_metrics(step, {f"m{k}": i + k + step / generations for k in range(metrics)})
                calls.append(time.perf_counter() - start)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(first, first + count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return calls


def load(uri: str, runs: int, processes: int, generations: int, metrics: int) -> dict:
    experiment = f"load_{int(time.time() * 1000)}"
    open_experiment(experiment, uri)
    shares = [runs // processes + (p < runs % processes) for p in range(processes)]
    firsts = [sum(shares[:p]) for p in range(processes)]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        calls = [c for part in pool.starmap(log_runs, [(uri, experiment, f, n, generations, metrics)
                                                       for f, n in zip(firsts, shares)]) for c in part]
    wall = time.perf_counter() - start
    client = MlflowClient(uri)
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=runs + 1)
    complete = len(found) == runs and all(
        [m.step for m in client.get_metric_history(r.info.run_id, f"m{k}")] == list(range(generations))
        for r in found for k in (0, metrics - 1))
    return {"wall": wall, "points": runs * generations * metrics, "calls": len(calls), "slowest": max(calls),
            "complete": complete, "finished": sum(r.info.status == "FINISHED" for r in found)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--metrics", type=int, default=6)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"{args.runs} runs at once from {args.processes} processes, {args.generations} generations x "
          f"{args.metrics} metrics each, one log_batch per run per generation; {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)  # the postgres user must reach its data directory
        for backend in args.backends:
            with server(directory, backend) as uri:
                r = load(uri, args.runs, args.processes, args.generations, args.metrics)
            print(f"{backend:10s}: {r['points'] / r['wall']:7.0f} points/s sustained ({r['calls'] / r['wall']:.0f} "
                  f"calls/s, {r['wall']:.1f} s, slowest call {r['slowest']:.2f} s) | {r['finished']}/{args.runs} runs "
                  f"FINISHED, every point once: {r['complete']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
