"""The runs of train.py and pixel_ga.py in an MLflow store, as pandas frames; shared by the
E-GAN and FaceGen comparisons (analysis/egan.py, analysis/facegen.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Run  # noqa: E402

from .load import artifact_file, client_for, search_finished  # noqa: E402
from .store import add_store_arguments  # noqa: E402

EXPERIMENT = "gan"


def latest(runs: list[Run], key) -> dict:
    """The most recently finished run per key(run)."""
    chosen = {}
    for run in sorted(runs, key=lambda r: r.info.end_time or 0):
        chosen[key(run)] = run
    return chosen


def finished(uri: str | None, source: str) -> tuple[MlflowClient, list[Run]]:
    """FINISHED runs of the entry point `source` (train.py or pixel_ga.py)."""
    client, _ = client_for(uri)
    return client, search_finished(client, EXPERIMENT, f"tags.`mlflow.source.name` = '{source}'")


def history(client: MlflowClient, run: Run, metrics: list[str]) -> pd.DataFrame:
    """One row per logged step, one column per metric (NaN where a step lacks it)."""
    points = [(p.step, key, p.value) for key in metrics for p in client.get_metric_history(run.info.run_id, key)]
    frame = pd.DataFrame(points, columns=["step", "metric", "value"])
    return frame.pivot_table(index="step", columns="metric", values="value", aggfunc="last").reset_index()


def last_image(client: MlflowClient, run: Run, folder: str, tmp: Path):
    """The last image artifact in `folder` (file names sort by step)."""
    names = sorted(a.path for a in client.list_artifacts(run.info.run_id, folder))
    return plt.imread(artifact_file(client, run.info.run_id, names[-1], tmp)), names[-1]


def save(figure, out: Path, name: str) -> None:
    for suffix in ("png", "pdf"):
        figure.savefig(out / f"{name}.{suffix}", dpi=150, bbox_inches="tight")
    plt.close(figure)


def add_gan_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """--out and the store, shared by the E-GAN and FaceGen analyses."""
    parser.add_argument("--out", type=Path, default=Path(default_out))
    add_store_arguments(parser)
