"""The thesis's chapter-5 evaluation — are the images found for "a photo of a <class>" recognised
as that class by an independent classifier? — from the MLflow store.

    python -m analysis eval --run-missing                  # run the jobs missing from the store, then write
    python -m analysis eval                                # from the runs already in the store
    python -m analysis eval --quick --run-missing --paths eval_quick --out figures-quick/eval
    python -m analysis eval --run-missing --experiments eval_imagenet   # real models (weights, GPU)

Per experiment (conf/experiment/eval_*.yaml) and algorithm: the per-class accuracy table
(positive, negative, accuracy %, TOTAL; in the shapes world also the ground-truth accuracy and
how often the classifier is wrong about the image), beside the thesis's numbers where the
configuration is the thesis's; the confusion matrix; "most confused with" bars; sample images;
and, with several algorithms, their accuracies with 95 % bootstrap confidence intervals over runs.
Tables as CSV and Markdown, figures as PNG and PDF, and index.md, under --out."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient

from latentevo.errors import LatentevoError
from latentevo.paths import PROJECT_DIR

from . import eval as E
from . import eval_figures as EF
from .figures import ALGORITHM_COLOURS, _ordered, algorithm_name
from .stats import markdown
from .store import Store, add_store_arguments, from_args, selected
from .sweeps import missing_jobs, sweep_folder

SHAPES_WORLD = ("eval_shapes", "eval_colours", "eval_dcgan")
REAL = ("eval_imagenet", "eval_cifar10")
# a first look in minutes: three shapes, two algorithms, two repetitions, small populations
QUICK = {"eval_shapes": ["evaluation.target=circle,square,star", "algo=ga,random", "seed=range(2)", "pop_size=16",
                         "generations=5", "log_every=5", "hydra/launcher=local"]}


@dataclass
class Output:
    out: Path
    index: list[str]

    def figure(self, name: str, title: str, figure: Figure) -> None:
        for suffix in ("png", "pdf"):
            figure.savefig(self.out / f"{name}.{suffix}", dpi=150, bbox_inches="tight")
        plt.close(figure)
        self.index.append(f"- {title}: [{name}.png]({name}.png), [pdf]({name}.pdf)")
        print(f"{self.out / name}.png")

    def table(self, name: str, title: str, table: pd.DataFrame, note: str = "") -> None:
        table.to_csv(self.out / f"{name}.csv", index=False)
        text = f"{title}\n\n{note + chr(10) + chr(10) if note else ''}{markdown(table, digits=5)}"
        (self.out / f"{name}.md").write_text(f"# {text}")
        self.index.append(f"\n### {text}\n[{name}.csv]({name}.csv), [{name}.md]({name}.md)\n")


# --- which jobs are missing --------------------------------------------------------------------


def run_missing(name: str, overrides: list[str]) -> int:
    """Runs the experiment's sweep when any of its jobs has no finished run; the jobs that have
    one are skipped by run.py itself (resume). Returns how many were missing."""
    missing = missing_jobs(name, overrides)
    if missing:
        command = [sys.executable, "run.py", "-m", f"experiment={name}", *overrides, *sweep_folder(name)]
        print(f"{name}: {len(missing)} jobs missing: {' '.join(command[2:])}", flush=True)
        if subprocess.run(command, cwd=PROJECT_DIR).returncode != 0:
            raise LatentevoError(f"{name}: some jobs failed (see above); run the same command again to retry them")
    return len(missing)


# --- tables and figures ------------------------------------------------------------------------


def accuracy_table(ev: E.EvalRuns, algo: str) -> tuple[pd.DataFrame, str]:
    """The algorithm's per-class table, with the thesis's numbers when the configuration is the
    thesis's, and a line that says which."""
    runs = ev.runs[ev.runs["algorithm"] == algo]
    table = E.class_table(ev.predictions[ev.predictions["algorithm"] == algo], ev.classes)
    dataset, reasons = E.thesis_comparison(runs, ev.classes)
    if dataset:
        return E.with_thesis(table, dataset), f"Thesis numbers (chapter 5, {dataset}) beside ours: same configuration."
    return table, f"Thesis numbers: not comparable ({'; '.join(reasons)})."


def setting_line(ev: E.EvalRuns, algo: str) -> str:
    runs = ev.runs[ev.runs["algorithm"] == algo]
    reps = runs.groupby("target")["seed"].nunique()
    one = runs.iloc[0]
    return (f"{algorithm_name(algo)}, generator {one.generator}, classifier {one.evaluation}, prompt "
            f"\"{one.template}\", population {one.pop_size}, {one.generations} generations, "
            f"{reps.min() if reps.min() == reps.max() else f'{reps.min()}–{reps.max()}'} repetitions per class")


def write_experiment(ev: E.EvalRuns, client: MlflowClient, out: Output) -> None:
    name, preds = ev.experiment, ev.predictions
    algorithms = _ordered(ev.runs["algorithm"], ALGORITHM_COLOURS)
    primary = algorithms[0]
    out.index.append(f"\n## {name} ({len(ev)} runs, {len(preds)} images)\n")
    for algo in algorithms:
        table, note = accuracy_table(ev, algo)
        out.table(f"{name}_{algo}_accuracy", f"{name}, {algorithm_name(algo)}: accuracy per class",
                  table, f"{setting_line(ev, algo)}. {note}")
        mine = preds[preds["algorithm"] == algo]
        matrix = E.confusion(mine, ev.classes)
        matrix.to_csv(out.out / f"{name}_{algo}_confusion.csv")
        if algo == primary:
            out.figure(f"{name}_{algo}_confusion", f"Confusion matrix, {algorithm_name(algo)}",
                       EF.confusion_heatmap(matrix, f"{name}, {algorithm_name(algo)}: images per class asked for"))
            counts = E.confused_with(mine)
            counts.to_csv(out.out / f"{name}_{algo}_confused_with.csv", index=False)
            out.figure(f"{name}_{algo}_confused_with", f"Most confused with, {algorithm_name(algo)}",
                       EF.confused_with_bars(counts, ev.classes, f"{name}, {algorithm_name(algo)}: misclassified "
                                             "images, the classes they were given"))
            out.figure(f"{name}_{algo}_samples", f"Sample images per class, {algorithm_name(algo)}",
                       EF.sample_grid(ev, mine, client))
            if "truth_accuracy_pct" in table:
                out.figure(f"{name}_{algo}_classifier_vs_truth", f"Classifier vs ground truth, {algorithm_name(algo)}",
                           EF.classifier_vs_truth(table[table["class"] != "TOTAL"],
                                                  f"{name}, {algorithm_name(algo)}: classifier and ground truth"))
    overall = E.algorithm_table(preds).sort_values("algorithm", key=lambda s: s.map(algorithms.index))
    out.table(f"{name}_algorithms", f"{name}: accuracy per algorithm (mean over runs, 95 % bootstrap CI over runs)",
              overall, "accuracy: classified as the class asked for; truth_accuracy: the image really shows it; "
              "classifier_right: the classifier agrees with the ground truth (all in %).")
    per_class = E.algorithm_table(preds, ["algorithm", "target"])
    out.table(f"{name}_algorithms_per_class", f"{name}: accuracy per algorithm and class", per_class)
    if len(algorithms) > 1:
        out.figure(f"{name}_algorithms", "Accuracy per algorithm and class, 95 % CI",
                   EF.algorithm_accuracy(preds, ev.classes, f"{name}: accuracy per class and algorithm"))


def build(out: Path, experiments: list[str], overrides: dict[str, list[str]], run: bool,
          store: Store | None = None) -> list[str]:
    """Runs the missing jobs (if `run`) into the store (default: paths=default's), writes every
    table and figure and the index. Returns the experiments with no runs."""
    store = store or selected()
    out.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(store.uri)
    output = Output(out, [f"# Chapter 5: do the generated images show what was asked?\n\nFrom the MLflow store "
                          f"`{store.uri}`. Each run's final population is classified; accuracy = share of "
                          "images classified as the class asked for. The thesis (BigGAN-deep-256, GA, "
                          "population 64 × 8 repetitions, 512 images per class): CIFAR-10 CNN 24.77 %, "
                          "ResNet-50 on 10 ImageNet classes 22.73 % (`analysis/thesis_eval_tables.csv`).\n"])
    skipped = []
    for name in experiments:
        if run:
            run_missing(name, [*overrides.get(name, []), *store.overrides])
        ev = E.load_eval(name, uri=store.uri, cache_dir=store.cache)
        if not len(ev):
            print(f"{name}: no finished runs, nothing written "
                  f"(run `make eval` or `python run.py -m experiment={name}`)")
            skipped.append(name)
            continue
        write_experiment(ev, client, output)
    (out / "index.md").write_text("\n".join(output.index) + "\n")
    print(f"index: {out / 'index.md'}")
    return skipped


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("figures/eval"))
    parser.add_argument("--run-missing", action="store_true", help="first run the jobs not in the store")
    parser.add_argument("--quick", action="store_true", help="three shapes, GA and random search, small and short")
    parser.add_argument("--experiments", nargs="+", choices=SHAPES_WORLD + REAL, help="default: the shapes world's")
    add_store_arguments(parser)


def main(args: argparse.Namespace) -> None:
    experiments = args.experiments or (list(QUICK) if args.quick else list(SHAPES_WORLD))
    skipped = build(args.out, experiments, QUICK if args.quick else {}, args.run_missing, from_args(args))
    if skipped and args.run_missing:
        raise LatentevoError(f"no finished runs for {', '.join(skipped)}")
