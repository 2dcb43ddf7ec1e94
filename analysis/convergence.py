"""Convergence curves of an MLflow experiment's runs, grouped by a parameter (thesis-style
"GA vs DE" figures): mean and 95 % interval over seeds of a metric per generation.

    python analysis/convergence.py ga_vs_de --by choice.algo --metric best_cos_sim --out ga_vs_de.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from latentevo.tracking import tracking_uri  # noqa: E402


def histories(client: MlflowClient, experiment_name: str, metric: str, by: list[str]) -> pd.DataFrame:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise SystemExit(f"error: no experiment '{experiment_name}' in {tracking_uri()}")
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'", max_results=10000)
    rows = [
        {"run": run.info.run_id, "generation": point.step, metric: point.value, **{k: run.data.params.get(k) for k in by}}
        for run in runs
        for point in client.get_metric_history(run.info.run_id, metric)
    ]
    if not rows:
        raise SystemExit(f"error: no finished runs with '{metric}' in experiment '{experiment_name}'")
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--metric", default="best_cos_sim")
    parser.add_argument("--by", nargs="+", default=["choice.algo"], help="params that name a curve")
    parser.add_argument("--out", type=Path, help="figure path (default: <experiment>_<metric>.png)")
    args = parser.parse_args()

    data = histories(MlflowClient(tracking_uri()), args.experiment, args.metric, args.by)
    data["group"] = data[args.by].astype(str).agg(" ".join, axis=1)
    final = data.loc[data.groupby("run")["generation"].idxmax()]
    summary = final.groupby("group")[args.metric].agg(["count", "mean", "std", "min", "max"])
    print(f"{args.metric} at the last generation, per {' '.join(args.by)}:")
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))

    ax = sns.lineplot(data=data, x="generation", y=args.metric, hue="group", errorbar=("ci", 95))
    ax.set_title(f"{args.experiment}: {args.metric}, mean and 95 % CI over seeds")
    out = args.out or Path(f"{args.experiment}_{args.metric}.png")
    ax.figure.savefig(out, dpi=150, bbox_inches="tight")
    print(f"figure: {out}")


if __name__ == "__main__":
    main()
