"""Chapter-5 figures: confusion-matrix heatmap, "most confused with" bars, sample images per class,
classifier vs ground-truth accuracy, and accuracy per algorithm with confidence intervals. Each
function returns a matplotlib Figure."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from mlflow import MlflowClient

from . import eval as E
from .figures import ALGORITHM_COLOURS, CI_SEED, _ordered, _palette, algorithm_name

RIGHT, WRONG = "tab:green", "tab:red"


def _wrap(text: str, width: int = 14) -> str:
    return textwrap.fill(str(text), width)


def confusion_heatmap(matrix: pd.DataFrame, title: str) -> Figure:
    """Image counts per class asked for (rows) x predicted (columns); the diagonal is right."""
    n_rows, n_cols = matrix.shape
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.8 * n_cols), max(4.0, 1.2 + 0.6 * n_rows)))
    sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar_kws={"label": "images"}, ax=ax,
                xticklabels=[_wrap(c, 10) for c in matrix.columns], yticklabels=[_wrap(c, 18) for c in matrix.index])
    ax.set(xlabel="predicted by the classifier", ylabel="class asked for", title=title)
    ax.tick_params(axis="x", labelrotation=45)
    ax.tick_params(axis="y", labelrotation=0)
    fig.tight_layout()
    return fig


def confused_with_bars(counts: pd.DataFrame, classes: list[str], title: str) -> Figure:
    """Per class asked for, the classes its misclassified images were most often given."""
    shown = [c for c in classes if c in set(counts["target"])]
    n_cols = min(5, max(1, len(shown)))
    n_rows = max(1, -(-len(shown) // n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 2.6 * n_rows), squeeze=False)
    for ax, cls in zip(axes.flat, shown):
        data = counts[counts["target"] == cls]
        sns.barplot(data=data, y="predicted", x="share_pct", color="tab:red", ax=ax, orient="h")
        ax.set(title=_wrap(f"{cls}", 30), xlabel="% of its images", ylabel="")
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_axis_off()
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sample_grid(ev: E.EvalRuns, predictions: pd.DataFrame, client: MlflowClient, per_class: int = 8) -> Figure:
    """Per class, up to half right and half wrong images (the best of each run first), each
    titled with the classifier's prediction: green if it is the class asked for, red if not."""
    fig, axes = plt.subplots(len(ev.classes), per_class, figsize=(1.3 * per_class, 1.45 * len(ev.classes)),
                             squeeze=False)
    with tempfile.TemporaryDirectory() as tmp:
        for row, cls in zip(axes, ev.classes):
            picks = _samples(predictions[predictions["target"] == cls], per_class)
            images = {run_id: E.run_images(client, run_id, Path(tmp)) for run_id in picks["run_id"].unique()}
            for ax in row:
                ax.set(xticks=[], yticks=[])
                ax.spines[:].set_visible(False)
            for ax, pick in zip(row, picks.itertuples()):
                ax.imshow(images[pick.run_id][pick.image])
                ax.set_title(_wrap(pick.predicted, 12), fontsize=7, color=RIGHT if pick.correct else WRONG)
            row[0].set_ylabel(_wrap(cls, 12), fontsize=8)
    fig.suptitle("Final-population images per class asked for; title: the classifier's prediction "
                 "(green: the class asked for)", fontsize=9)
    fig.tight_layout()
    return fig


def _samples(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to n/2 right and n/2 wrong images (more of one kind where the other runs out)."""
    ordered = rows.sort_values(["image", "seed"])  # one image of each run before a second of any
    right, wrong = ordered[ordered["correct"].astype(bool)], ordered[~ordered["correct"].astype(bool)]
    n_wrong = min(len(wrong), max(n // 2, n - len(right)))
    return pd.concat([right.head(n - n_wrong), wrong.head(n_wrong)])


def classifier_vs_truth(table: pd.DataFrame, title: str) -> Figure:
    """Per class: % classified as the class asked for, % really showing it (ground truth), and %
    where the classifier contradicts the ground truth."""
    columns = {"accuracy_pct": "classifier says: the class asked for",
               "truth_accuracy_pct": "ground truth: the class asked for",
               "classifier_error_pct": "classifier wrong about the image"}
    long = table.melt(id_vars="class", value_vars=list(columns), var_name="measure", value_name="pct")
    long["measure"] = long["measure"].map(columns)
    fig, ax = plt.subplots(figsize=(1.2 + 1.0 * table["class"].nunique(), 4.2))
    sns.barplot(data=long, x="class", y="pct", hue="measure", palette=["tab:blue", "tab:green", "tab:red"], ax=ax)
    ax.set(xlabel="class asked for", ylabel="% of the final-population images", ylim=(0, 105), title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def algorithm_accuracy(predictions: pd.DataFrame, classes: list[str], title: str) -> Figure:
    """Accuracy per class and algorithm, mean over runs with a 95 % bootstrap CI over runs: the
    classifier's (left) and, with a ground truth, the renderer's (right)."""
    per_run = E.run_accuracies(predictions)
    measures = {"accuracy_pct": "classifier accuracy (%)", "truth_accuracy_pct": "ground-truth accuracy (%)"}
    measures = {m: label for m, label in measures.items() if m in per_run}
    order = _ordered(per_run["algorithm"], ALGORITHM_COLOURS)
    fig, axes = plt.subplots(1, len(measures), figsize=(6.5 * len(measures), 4.3), squeeze=False, sharey=True)
    for ax, (measure, label) in zip(axes[0], measures.items()):
        sns.pointplot(data=per_run, x="target", y=measure, hue="algorithm", order=classes, hue_order=order,
                      palette=_palette(order, ALGORITHM_COLOURS), errorbar=("ci", 95), seed=CI_SEED,
                      dodge=0.4, linestyle="none", capsize=0.1, ax=ax)
        ax.set(xlabel="class asked for", ylabel=label, ylim=(-3, 103), title=label)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [algorithm_name(v) for v in labels], title="mean over runs, 95 % CI", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
