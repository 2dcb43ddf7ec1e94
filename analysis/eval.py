"""Chapter-5 evaluation runs from MLflow -> per-image predictions, per-class accuracy tables,
confusion matrices and per-algorithm accuracies with confidence intervals.

    ev = load_eval("eval_shapes")
    class_table(ev.predictions.query("algorithm == 'ga'"), ev.classes)

Each run of an evaluation experiment (conf/experiment/eval_*.yaml) logged `eval_predictions.csv`
(one row per image of its final population) and `eval_images.npz` (their thumbnails)."""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from scipy.stats import bootstrap

from latentevo.identity import IDENTITY_TAG

from .load import DEFAULT_CACHE_DIR, artifact_file, client_for, search_finished

PREDICTIONS, IMAGES = "eval_predictions.csv", "eval_images.npz"
# the params the evaluation tables group runs by, under the names the analysis uses (which job a
# run was is its identity tag)
COLUMNS = {
    "choice.algo": "algorithm",
    "choice.generator": "generator",
    "choice.evaluation": "evaluation",
    "evaluation.target": "target",
    "evaluation.template": "template",
    "seed": "seed",
    "generations": "generations",
    "pop_size": "pop_size",
}
SETTING = ["algorithm", "generator", "evaluation", "template", "generations", "pop_size"]
THESIS_TABLES = Path(__file__).with_name("thesis_eval_tables.csv")
# the thesis's chapter-5 configuration, and its table per evaluation config
THESIS_SETTING = {"generator": "biggan_deep_256", "algorithm": "ga", "pop_size": 64, "repetitions": 8,
                  "template": "a photo of a {class}"}
THESIS_DATASET = {"imagenet10": "imagenet", "cifar10": "cifar10"}
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0


@dataclass
class EvalRuns:
    experiment: str
    classes: list[str]  # in the evaluation config's order
    runs: pd.DataFrame  # one row per run: run_id, end_time, job (its identity), COLUMNS, eval_* metrics
    predictions: pd.DataFrame  # one row per image: run_id, COLUMNS but target, the logged predictions

    def __len__(self) -> int:
        return len(self.runs)


def run_table(runs) -> pd.DataFrame:
    """One row per run; a job run again counts once, its latest run kept."""
    rows = [{"run_id": r.info.run_id, "end_time": r.info.end_time, "job": r.data.tags.get(IDENTITY_TAG)}
            | {column: r.data.params.get(param) for param, column in COLUMNS.items()}
            | {"classes": r.data.params.get("evaluation.classes")}
            | {k: v for k, v in r.data.metrics.items() if k.startswith("eval_")}
            for r in runs if "choice.evaluation" in r.data.params]
    if not rows:
        return pd.DataFrame(columns=["run_id", "end_time", "job", *COLUMNS.values(), "classes"])
    table = pd.DataFrame(rows)
    for column in ("seed", "generations", "pop_size"):
        table[column] = pd.to_numeric(table[column]).astype("Int64")
    table = table.sort_values("end_time").drop_duplicates("job", keep="last")
    return table.sort_values(list(COLUMNS.values())).reset_index(drop=True)


def _predictions(client: MlflowClient, run_id: str, cache_dir: Path | None) -> pd.DataFrame:
    """A finished run's predictions; its artifacts never change, so a local copy is kept."""
    cached = cache_dir / f"{run_id}.csv" if cache_dir else None
    if cached is not None and cached.is_file():
        return pd.read_csv(cached)
    table = pd.read_csv(artifact_file(client, run_id, PREDICTIONS, (cache_dir or Path(".")) / "download" / run_id))
    if cached is not None:
        table.to_csv(cached, index=False)
    return table


def load_eval(experiment: str, uri: str | None = None, cache_dir: Path | None = DEFAULT_CACHE_DIR) -> EvalRuns:
    """The experiment's finished evaluation runs and every image's prediction."""
    client, _ = client_for(uri)
    runs = run_table(search_finished(client, experiment))
    if runs.empty:
        return EvalRuns(experiment, [], runs, pd.DataFrame())
    cache = cache_dir / "eval" if cache_dir else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    frames = [_predictions(client, run_id, cache).assign(run_id=run_id) for run_id in runs["run_id"]]
    settings = runs[["run_id", *COLUMNS.values()]].drop(columns="target")
    predictions = settings.merge(pd.concat(frames, ignore_index=True), on="run_id")
    classes = ast.literal_eval(runs["classes"].iloc[-1])
    seen = [c for c in classes if c in set(runs["target"])]
    return EvalRuns(experiment, seen, runs, predictions)


def run_images(client: MlflowClient, run_id: str, dst: Path) -> np.ndarray:
    """(N, t, t, 3) uint8 thumbnails of the run's final population, in its predictions' order."""
    with np.load(artifact_file(client, run_id, IMAGES, dst / run_id)) as arrays:
        return arrays["images"]


# --- tables ------------------------------------------------------------------------------------


def class_table(predictions: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Per class asked for: images, positive (classified as that class), negative, accuracy %;
    with a ground truth also truth_positive (really that class), truth_accuracy % and
    classifier_error % (the classifier disagrees with the ground truth). A TOTAL row last."""
    p = predictions.assign(target=pd.Categorical(predictions["target"], classes))
    has_truth = "truth" in p and p["truth"].notna().all()
    agg = {"images": ("correct", "size"), "positive": ("correct", "sum")}
    if has_truth:
        agg |= {"truth_positive": ("truth_correct", "sum"),
                "classifier_errors": ("classifier_right", lambda s: (~s.astype(bool)).sum())}
    table = p.groupby("target", observed=False).agg(**agg)
    table.loc["TOTAL"] = table.sum()
    table = table.astype(int)
    table.insert(2, "negative", table["images"] - table["positive"])
    table.insert(3, "accuracy_pct", 100 * table["positive"] / table["images"])
    if has_truth:
        table["truth_accuracy_pct"] = 100 * table["truth_positive"] / table["images"]
        table["classifier_error_pct"] = 100 * table.pop("classifier_errors") / table["images"]
    return table.rename_axis("class").reset_index().round(2)


def thesis_comparison(runs: pd.DataFrame, classes: list[str]) -> tuple[str | None, list[str]]:
    """The thesis's table this configuration reproduces (its dataset name), or None and why not."""
    dataset = THESIS_DATASET.get(runs["evaluation"].iloc[0])
    reasons = [] if dataset else [f"evaluation {runs['evaluation'].iloc[0]} has no thesis table"]
    for key in ("generator", "algorithm", "pop_size", "template"):
        found = sorted(map(str, runs[key].unique()))
        if found != [str(THESIS_SETTING[key])]:
            reasons.append(f"{key} {', '.join(found)} (thesis: {THESIS_SETTING[key]})")
    repetitions = sorted(runs.groupby("target")["seed"].nunique().unique())
    if repetitions != [THESIS_SETTING["repetitions"]]:
        reasons.append(f"repetitions {', '.join(map(str, repetitions))} (thesis: {THESIS_SETTING['repetitions']})")
    if dataset:
        thesis_classes = set(pd.read_csv(THESIS_TABLES).query("dataset == @dataset")["class"]) - {"TOTAL"}
        if set(classes) != thesis_classes:
            reasons.append("classes differ from the thesis's")
    return (dataset if not reasons else None), reasons


def with_thesis(table: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The table with the thesis's positive, negative and accuracy % beside each class."""
    thesis = pd.read_csv(THESIS_TABLES).query("dataset == @dataset").drop(columns="dataset")
    thesis = thesis.rename(columns={c: f"thesis_{c}" for c in ("positive", "negative", "accuracy_pct")})
    return table.merge(thesis, on="class", how="left")


def confusion(predictions: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Images per class asked for (rows) x class predicted (columns): the classes asked for, then
    `other` for any other class of the classifier (e.g. the rest of ImageNet's 1000)."""
    predicted = predictions["predicted"].where(predictions["predicted"].isin(classes), "other")
    columns = classes + (["other"] if (predicted == "other").any() else [])
    matrix = pd.crosstab(pd.Categorical(predictions["target"], classes), pd.Categorical(predicted, columns),
                         dropna=False)
    return matrix.rename_axis(index="asked for", columns="predicted")


def confused_with(predictions: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """Per class asked for, the `top` classes its misclassified images were given, with counts
    and their share of the class's images."""
    wrong = predictions[~predictions["correct"].astype(bool)]
    counts = wrong.groupby(["target", "predicted"]).size().rename("images").reset_index()
    sizes = predictions.groupby("target").size().rename("class_images").reset_index()
    counts = counts.merge(sizes, on="target")
    counts["share_pct"] = 100 * counts["images"] / counts.pop("class_images")
    counts = counts.sort_values(["target", "images", "predicted"], ascending=[True, False, True])
    return counts.groupby("target").head(top).reset_index(drop=True)


# --- algorithms, with confidence intervals -----------------------------------------------------


def mean_ci(values: pd.Series) -> tuple[float, float, float]:
    """Mean and its 95 % percentile-bootstrap interval over independent runs (images of one run
    share a population, so the run, not the image, is the unit)."""
    x = values.dropna().to_numpy(float)
    if len(x) == 0:
        return np.nan, np.nan, np.nan
    if len(x) < 2 or np.ptp(x) == 0:  # no spread to resample
        return (float(x.mean()),) * 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = bootstrap((x,), np.mean, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                       method="percentile", random_state=BOOTSTRAP_SEED).confidence_interval
    return float(x.mean()), float(ci.low), float(ci.high)


def run_accuracies(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its classifier accuracy, ground-truth accuracy and classifier agreement
    with the truth, in % of its images."""
    columns = {"accuracy_pct": "correct", "truth_accuracy_pct": "truth_correct",
               "classifier_right_pct": "classifier_right"}
    present = {name: col for name, col in columns.items() if col in predictions}
    per_run = predictions.groupby(["run_id", "algorithm", "target"])[list(present.values())].mean() * 100
    return per_run.rename(columns={col: name for name, col in present.items()}).reset_index()


def algorithm_table(predictions: pd.DataFrame, by: list[str] = ("algorithm",)) -> pd.DataFrame:
    """Per algorithm (and `by`): runs, images, and each accuracy's mean over runs with its 95 %
    bootstrap confidence interval."""
    per_run = run_accuracies(predictions)
    measures = [c for c in ("accuracy_pct", "truth_accuracy_pct", "classifier_right_pct") if c in per_run]
    rows = []
    for key, group in per_run.groupby(list(by)):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row |= {"runs": len(group), "images": int(predictions["run_id"].isin(group["run_id"]).sum())}
        for m in measures:
            row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"] = mean_ci(group[m])
        rows.append(row)
    return pd.DataFrame(rows).round(2)
