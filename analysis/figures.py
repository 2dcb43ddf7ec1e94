"""Figure functions: each takes loaded runs (analysis.load) and returns a matplotlib Figure.

Colours are fixed per algorithm and per generator, so one algorithm has one colour in every
figure (the thesis: GA blue, DE orange).
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from .load import Runs, artifact_file, logged_generations  # noqa: E402
from .stats import on_common_grid, t_interval  # noqa: E402

# one progress bar per downloaded image would bury the build's own output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

ALGORITHM_COLOURS = {
    "ga": "tab:blue",
    "nsga2": "tab:brown",
    "de": "tab:orange",
    "de_best1_bin": "tab:green",
    "de_rand1_exp": "tab:red",
    "cmaes": "tab:purple",
    "random": "tab:gray",
    "adam": "tab:brown",
}
ALGORITHM_NAMES = {
    "ga": "GA",
    "de": "DE/rand/1/bin",
    "de_best1_bin": "DE/best/1/bin",
    "de_rand1_exp": "DE/rand/1/exp",
    "cmaes": "CMA-ES",
    "random": "random search",
    "nsga2": "NSGA-II (cos_sim, realness)",
    "adam": "Adam (gradient)",
}
GENERATOR_COLOURS = {"shapes": "tab:cyan", "dcgan_shapes": "tab:olive"}
GENERATOR_NAMES = {"shapes": "shapes (procedural)", "dcgan_shapes": "DCGAN"}
METRIC_LABELS = {
    "best_cos_sim": "best cos_sim",
    "mean_cos_sim": "population mean cos_sim",
    "diversity": "population diversity (mean pairwise latent distance / √dim)",
    "pop_colour_leak": "colour leak: fraction of the population whose background has the object's colour",
    "pop_truth_match": "population mean truth_match (fraction of named attributes shown)",
    "truth_match": "truth_match of the best image (fraction of named attributes shown)",
    "best_realness": "realness D(x) of the best image (NSGA-II: the front's pick)",
    "eval_accuracy": "classifier accuracy: fraction of the population classified as the asked class",
    "colour_leak": "colour leak: the best image's background has the prompt's object colour",
    "object_cos_sim": "cos_sim of the best image to the object term (term 0)",
    "exact_match": "best image shows every attribute of the target",
    "eval_best_correct": "the classifier names the asked shape in the best image",
    "ms_per_eval": "wall time per evaluation (ms, one image; the run's own, runs one at a time)",
}
#: metrics of a whole run rather than of its final generation: no "final" in their labels
NOT_FINAL = {"ms_per_eval"}
COST_LABELS = {"n_evals": "evaluations (Adam: one forward + backward each)", "wall_s": "wall time of the run (s)"}
# cosine similarity of CLIP embeddings: dimensionless, in [-1, 1]
COS_SIM_UNIT = "(cosine similarity, −1…1)"
CI_SEED = 0  # seaborn bootstraps its confidence bands; a fixed seed redraws the same band


def algorithm_name(algo: str) -> str:
    return ALGORITHM_NAMES.get(algo, algo)


def _ordered(values, colours: dict[str, str]) -> list[str]:
    """The distinct values, those with a fixed colour first in that order (GA before DE), then
    the rest sorted."""
    present = set(values)
    return [v for v in colours if v in present] + sorted(present - set(colours))


def _palette(values, colours: dict[str, str]) -> dict[str, str]:
    """The fixed colours, and seaborn's for any value without one."""
    spare = iter(sns.color_palette("dark", len(values)))
    return {v: colours.get(v) or next(spare) for v in values}


def _label(metric: str, reversed_: bool = False, prefix: str = "", width: int = 60) -> str:
    """An axis label: the metric's description, its unit, wrapped to `width` characters."""
    label = f"{prefix}{METRIC_LABELS.get(metric, metric)}"
    if "cos_sim" in metric:
        label = f"{label} {COS_SIM_UNIT}"
    return textwrap.fill(f"reversed: −({label})" if reversed_ else label, width)


def convergence(runs: Runs, metric: str, reversed_: bool = False, hue: str = "algorithm") -> Figure:
    """Mean of `metric` per generation over the runs of each `hue` value, with a 95 %
    bootstrap confidence band; `reversed_` plots −metric, the thesis's orientation."""
    data = runs.history.dropna(subset=[metric]).copy()
    y = f"−{metric}" if reversed_ else metric
    data[y] = -data[metric] if reversed_ else data[metric]
    colours = ALGORITHM_COLOURS if hue == "algorithm" else {}
    order = _ordered(data[hue], colours)
    palette = _palette(order, colours)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    sns.lineplot(data=data, x="generation", y=y, hue=hue, hue_order=order, palette=palette,
                 errorbar=("ci", 95), seed=CI_SEED, ax=ax)
    seeds = data.groupby(hue)["run_id"].nunique()
    handles, labels = ax.get_legend_handles_labels()
    names = [f"{algorithm_name(v) if hue == 'algorithm' else v} ({seeds[v]} runs)" for v in labels]
    ax.legend(handles, names, title=f"{hue}: mean, 95 % CI")
    ax.set(xlabel="generation", ylabel=_label(metric, reversed_))
    ax.set_title(f"{runs.experiment}: {METRIC_LABELS.get(metric, metric)} per generation{_prompt_suffix(data)}")
    if reversed_:
        ax.annotate("lower is better", xy=(0.99, 0.98), xycoords="axes fraction", ha="right", va="top", fontsize=8)
    fig.tight_layout()
    return fig


def versus_cost(runs: Runs, metrics: list[str], costs: tuple[str, ...] = ("n_evals", "wall_s")) -> Figure:
    """A panel per metric (rows) and cost (columns): the mean over runs of each algorithm, with a
    95 % bootstrap confidence band, each run read on a common grid of costs (stats.on_common_grid)."""
    metrics = [m for m in metrics if m in runs.history]
    fig, axes = plt.subplots(len(metrics), len(costs), figsize=(6.5 * len(costs), 4.2 * len(metrics)), squeeze=False)
    order = _ordered(runs.history["algorithm"], ALGORITHM_COLOURS)
    for row, metric in zip(axes, metrics):
        for ax, cost in zip(row, costs):
            data = on_common_grid(runs.history, metric, cost)
            sns.lineplot(data=data, x=cost, y=metric, hue="algorithm", hue_order=order,
                         palette=_palette(order, ALGORITHM_COLOURS), errorbar=("ci", 95), seed=CI_SEED, ax=ax)
            seeds = data.groupby("algorithm")["run_id"].nunique()
            handles, labels = ax.get_legend_handles_labels()
            ax.legend(handles, [f"{algorithm_name(v)} ({seeds[v]} runs)" for v in labels], title="mean, 95 % CI",
                      fontsize=8)
            ax.set(xlabel=COST_LABELS.get(cost, cost), ylabel=_label(metric, width=45))
    fig.suptitle(f"{runs.experiment}: against evaluations and wall time{_prompt_suffix(runs.history)}")
    fig.tight_layout()
    return fig


def population_measures(runs: Runs, metrics: list[str]) -> Figure:
    """Side-by-side convergence panels of population measures (diversity, colour leak, ...)."""
    metrics = [m for m in metrics if m in runs.history]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.5), squeeze=False)
    order = _ordered(runs.history["algorithm"], ALGORITHM_COLOURS)
    for ax, metric in zip(axes[0], metrics):
        sns.lineplot(data=runs.history, x="generation", y=metric, hue="algorithm", hue_order=order,
                     palette=_palette(order, ALGORITHM_COLOURS), errorbar=("ci", 95), seed=CI_SEED, ax=ax)
        ax.set(xlabel="generation", ylabel=_label(metric, width=45), title=metric)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [algorithm_name(v) for v in labels], title="mean, 95 % CI", fontsize=8)
    fig.suptitle(f"{runs.experiment}: the population over the generations{_prompt_suffix(runs.history)}")
    fig.tight_layout()
    return fig


def _prompt_suffix(data: pd.DataFrame) -> str:
    prompts = data["prompt"].unique()
    return f', "{prompts[0]}"' if len(prompts) == 1 else ""


def _image(client: MlflowClient, run_id: str, path: str, tmp: Path):
    return mpimg.imread(artifact_file(client, run_id, path, tmp / run_id))


def nearest_logged(logged: list[int], wanted: list[int]) -> list[int]:
    """For each wanted generation the nearest one with a logged grid, duplicates dropped."""
    nearest = [min(logged, key=lambda g: (abs(g - w), g)) for w in wanted]
    return list(dict.fromkeys(nearest))


def population_grid(runs: Runs, client: MlflowClient, generation: int, seed: int) -> Figure:
    """The population grids of one seed's run of each algorithm at `generation` (best first),
    one above the other: the thesis's GA/DE population pictures."""
    chosen = runs.runs[runs.runs["seed"] == seed].set_index("algorithm")
    order = _ordered(chosen.index, ALGORITHM_COLOURS)
    history = runs.history.set_index(["run_id", "generation"])
    with tempfile.TemporaryDirectory() as tmp:
        grids = {}
        for algo in order:
            run_id = chosen.loc[algo, "run_id"]
            shown = nearest_logged(logged_generations(client, run_id), [generation])[0]
            grids[algo] = (run_id, shown, _image(client, run_id, f"population/gen_{shown:04d}.png", Path(tmp)))
    height, width = next(iter(grids.values()))[2].shape[:2]
    fig, axes = plt.subplots(len(order), 1, figsize=(12, len(order) * (12 * height / width + 0.5)), squeeze=False)
    for ax, (algo, (run_id, shown, image)) in zip(axes[:, 0], grids.items()):
        ax.imshow(image)
        row = history.loc[(run_id, shown)]
        ax.set_title(f"{algorithm_name(algo)}, generation {shown}: best {row['best_cos_sim']:.3f}, "
                     f"mean {row['mean_cos_sim']:.3f} cos_sim", color=ALGORITHM_COLOURS.get(algo, "black"))
        ax.axis("off")
    prompt = chosen["prompt"].iloc[0]
    fig.suptitle(f'{runs.experiment}: population at generation {generation} (seed {seed}, "{prompt}"), best first')
    fig.tight_layout()
    return fig


def final_images(runs: Runs, client: MlflowClient, seeds: list[int]) -> Figure:
    """The best image of each algorithm's run for the first seeds, with its cos_sim."""
    table = runs.runs[runs.runs["seed"].isin(seeds)]
    order = _ordered(table["algorithm"], ALGORITHM_COLOURS)
    seeds = sorted(set(table["seed"]))
    fig, axes = plt.subplots(len(order), len(seeds), figsize=(2.2 * len(seeds), 2.9 * len(order)), squeeze=False)
    with tempfile.TemporaryDirectory() as tmp:
        for row_axes, algo in zip(axes, order):
            for ax, seed in zip(row_axes, seeds):
                ax.axis("off")
                run = table[(table["algorithm"] == algo) & (table["seed"] == seed)]
                if run.empty:
                    continue
                run = run.iloc[0]
                ax.imshow(_image(client, run["run_id"], "best.png", Path(tmp)))
                ax.set_title(f"{algorithm_name(algo)}, seed {seed}\n{run['best_cos_sim']:.3f}", fontsize=9,
                             color=ALGORITHM_COLOURS.get(algo, "black"))
    fig.suptitle(f'{runs.experiment}: best image of each run (cos_sim), "{table["prompt"].iloc[0]}"')
    fig.tight_layout()
    return fig


def generator_best_images(runs: Runs, client: MlflowClient, prompt: str, per_generator: int = 4) -> Figure:
    """For one prompt, each generator's best images over all its runs (a row per generator),
    titled with cos_sim, and truth_match where the generator has a ground truth."""
    table = runs.runs[runs.runs["prompt"] == prompt]
    generators = _ordered(table["generator"], GENERATOR_COLOURS)
    per_generator = min(per_generator, table["generator"].value_counts().max())
    fig, axes = plt.subplots(len(generators), per_generator, figsize=(2.4 * per_generator, 2.9 * len(generators)),
                             squeeze=False)
    with tempfile.TemporaryDirectory() as tmp:
        for row_axes, generator in zip(axes, generators):
            top = table[table["generator"] == generator].nlargest(per_generator, "best_cos_sim")
            for ax, (_, run) in zip(row_axes, top.iterrows()):
                ax.imshow(_image(client, run["run_id"], "best.png", Path(tmp)))
                truth = f", truth {run['truth_match']:.2f}" if pd.notna(run.get("truth_match")) else ""
                ax.set_title(f"{algorithm_name(run['algorithm'])} s{run['seed']}: {run['best_cos_sim']:.3f}{truth}",
                             fontsize=8)
            for ax in row_axes:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.spines[:].set_visible(False)
            row_axes[0].set_ylabel(GENERATOR_NAMES.get(generator, generator), fontsize=11,
                                   color=GENERATOR_COLOURS.get(generator, "black"))
    fig.suptitle(f'"{prompt}": best images per generator (cos_sim)')
    fig.tight_layout()
    return fig


def final_strip(runs: Runs, metric: str, by: str = "prompt", hue: str = "generator") -> Figure:
    """Box and strip plot of each run's final `metric` per `by` (a row each) and `hue`, one dot
    per run."""
    data = runs.runs.dropna(subset=[metric])
    colours = GENERATOR_COLOURS if hue == "generator" else ALGORITHM_COLOURS
    hue_order = _ordered(data[hue], colours)
    palette = _palette(hue_order, colours)
    order = sorted(data[by].unique())
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(order) * len(hue_order)))
    common = dict(data=data, x=metric, y=by, hue=hue, order=order, hue_order=hue_order, palette=palette, ax=ax)
    sns.boxplot(**common, fill=False, showfliers=False)
    sns.stripplot(**common, dodge=True, alpha=0.7, size=5, legend=False)
    names = GENERATOR_NAMES if hue == "generator" else ALGORITHM_NAMES
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [names.get(v, v) for v in labels], title=hue, loc="best")
    ax.set(xlabel=_label(metric, prefix="final ", width=90), ylabel=by)
    ax.set_title(f"{runs.experiment}: final {metric} per {by} and {hue}, one dot per run")
    fig.tight_layout()
    return fig


def fronts(runs: Runs, client: MlflowClient, seeds: list[int]) -> Figure:
    """Per prompt, the final non-dominated front of NSGA-II runs of a few seeds in (cos_sim,
    realness D(x) = 1 − the realness objective) space, each run's pick ringed, and the GA's best
    images of the same seeds as crosses."""
    prompts = sorted(runs.runs["prompt"].unique())
    fig, axes = plt.subplots(1, len(prompts), figsize=(6 * len(prompts), 4.8), squeeze=False)
    colours = sns.color_palette("colorblind", len(seeds))
    with tempfile.TemporaryDirectory() as tmp:
        for ax, prompt in zip(axes[0], prompts):
            here = runs.runs[(runs.runs["prompt"] == prompt) & runs.runs["seed"].isin(seeds)]
            for colour, seed in zip(colours, seeds):
                for run in here[here["seed"] == seed].itertuples():
                    if run.algorithm == "nsga2":
                        final = np.load(artifact_file(client, run.run_id, "population.npz", Path(tmp) / run.run_id))
                        f = final["objectives"][final["front"]]
                        order = np.argsort(-f[:, 0])
                        ax.plot(-f[order, 0], 1 - f[order, 1], "o-", color=colour, ms=4, lw=1, label=f"seed {seed}")
                        ax.scatter(run.best_cos_sim, run.best_realness, s=120, facecolors="none", edgecolors=colour)
                    else:
                        ax.scatter(run.best_cos_sim, run.best_realness, marker="x", s=60, color=colour)
            ax.set(xlabel=f"cos_sim {COS_SIM_UNIT}", ylabel="realness D(x) (0…1, higher: judged more real)",
                   title=f'"{prompt}"')
            ax.legend(title="NSGA-II front (○ pick); × GA best", fontsize=8)
    fig.suptitle(f"{runs.experiment}: final fronts, NSGA-II against the GA's best")
    fig.tight_layout()
    return fig


def condition_points(data: pd.DataFrame, metrics: list[str], by: str, hue: str, hue_order: list[str],
                     title: str) -> Figure:
    """One panel per metric: each run's final value per `by` (a row each) and `hue` condition,
    mean with its 95 % Student-t confidence interval over runs (the tables' intervals)."""
    order = list(dict.fromkeys(data[by]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 1.4 + 0.5 * len(order)), squeeze=False,
                             sharey=True)
    for ax, metric in zip(axes[0], metrics):
        sns.pointplot(data=data, x=metric, y=by, hue=hue, order=order, hue_order=hue_order, errorbar=t_interval,
                      dodge=0.4, linestyle="none", ax=ax)
        prefix = "" if metric in NOT_FINAL else "final "
        ax.set(xlabel=_label(metric, prefix=prefix, width=40), ylabel=by if ax is axes[0][0] else "")
        handles, labels = ax.get_legend_handles_labels()
        ax.get_legend().remove()
    # one legend for every panel, above them, where it hides no point
    fig.legend(handles, labels, title=f"{hue}: mean, 95 % t-interval over runs", loc="upper right", ncols=len(labels),
               fontsize=9, frameon=False)
    fig.suptitle(title, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig
