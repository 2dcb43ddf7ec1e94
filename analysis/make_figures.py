"""The thesis's chapter 4 figures and the statistics behind them, from the MLflow store.

    python -m analysis figures --run-missing        # run the sweeps not in the store yet, then draw
    python -m analysis figures                      # draw from the runs already in the store
    python -m analysis figures --quick --run-missing --paths quick --out figures-quick   # a few seeds and generations

Writes every figure as PNG and PDF under --out, the tables as CSV and Markdown, and index.md,
which names each figure's counterpart in the thesis. The store is the --paths option's
(conf/paths/; default: $MLFLOW_TRACKING_URI, else the project's mlflow.db) or --store.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient

from latentevo.errors import LatentevoError

from . import figures as F
from . import prompts as P
from . import stats
from .load import Runs, load_runs
from .store import Store, add_store_arguments, from_args, selected
from .sweeps import run_missing

EXPERIMENTS = ("ga_vs_de", "generators", "baselines", "unseen_prompts")
# beyond the thesis, drawn when asked for (--experiments), not by the default build:
# make exp-evolution-vs-gradient, make exp-nsga2-realness, make exp-penalties, make exp-image-prompts,
# make exp-augclip
EXTRA_EXPERIMENTS = ("evolution_vs_gradient", "nsga2_realness", "penalties", "image_prompts", "augclip")
# The thesis's own settings on the real models (StyleGAN2, BigGAN-deep, OpenAI CLIP; their
# weights needed): `make figures-thesis`. Not in the default build, which runs offline.
THESIS_EXPERIMENTS = ("thesis_ga_vs_de", "thesis_church", "thesis_ginger_boy", "thesis_clown_cyclist")
#: the measured answer of nsga2_realness: each run's best (NSGA-II: its pick), mean and 95 % CI
REALNESS_METRICS = ["best_cos_sim", "best_realness", "eval_best_target_probability"]


@dataclass(frozen=True)
class Settings:
    """What a build draws: sweep overrides per experiment, and which generations to show."""

    overrides: dict[str, list[str]]
    grid_generations: tuple[int, ...]  # population grids (thesis: generations 10, 100, 200)
    early_generation: int  # "GA ahead of DE early" is tested here (thesis: generation 10)
    final_image_seeds: int  # seeds shown in the final-image figure


THESIS_GRIDS = ("fig 4.4 (generation 10)", "fig 4.5 (generation 100)", "fig 4.6 (generation 200)")
#: experiments whose runs time their own compute: one job at a time (a pack's timestamps time the pack)
ONE_AT_A_TIME = ("evolution_vs_gradient", "augclip")
FULL = Settings({name: ["hydra/launcher=local"] if name in ONE_AT_A_TIME else []
                 for name in EXPERIMENTS + EXTRA_EXPERIMENTS + THESIS_EXPERIMENTS}, (10, 100, 200), 10, 6)
# A few seeds and generations: minutes on a CPU, one job at a time; every figure still drawn.
QUICK_COMMON = ["generations=12", "pop_size=8", "log_every=3", "hydra/launcher=local"]
QUICK = Settings(
    {
        "ga_vs_de": ["seed=range(3)", *QUICK_COMMON],
        "generators": ["algo=ga", "seed=range(2)", *QUICK_COMMON],
        "baselines": ["seed=range(2)", *QUICK_COMMON],
        "unseen_prompts": ["seed=0", *QUICK_COMMON],
        "evolution_vs_gradient": ["seed=range(2)", *QUICK_COMMON],
        "nsga2_realness": ["seed=range(2)", *QUICK_COMMON],
        "penalties": ["seed=range(2)", *QUICK_COMMON],
        "image_prompts": ["seed=range(2)", *QUICK_COMMON],
        "augclip": ["seed=range(2)", *QUICK_COMMON],
        "thesis_ga_vs_de": ["seed=range(3)", *QUICK_COMMON],
        **{name: ["algo=ga", "seed=range(2)", *QUICK_COMMON] for name in THESIS_EXPERIMENTS[1:]},
    },
    (3, 6, 12),
    3,
    3,
)


@dataclass
class Entry:
    name: str  # file stem under the output folder
    title: str
    thesis: str  # the thesis's counterpart, or what the figure adds
    figure: Figure


def ga_vs_de(runs: Runs, client: MlflowClient, settings: Settings) -> list[Entry]:
    seed = int(runs.runs["seed"].min())
    generations = sorted(runs.history["generation"].unique())
    grids: dict[int, str] = {}  # generation shown -> the thesis figure it stands for
    for wanted, thesis in zip(settings.grid_generations, THESIS_GRIDS):
        grids.setdefault(F.nearest_logged(generations, [wanted])[0], thesis)
    entries = [
        Entry(f"ga_vs_de_population_gen{g:04d}", f"Population at generation {g}, GA and DE, seed {seed}", thesis,
              F.population_grid(runs, client, g, seed))
        for g, thesis in grids.items()
    ]
    seeds = sorted(runs.runs["seed"].unique())[: settings.final_image_seeds]
    return entries + [
        Entry("ga_vs_de_mean_reversed", "Mean reversed cos_sim per generation, 95 % CI over seeds", "fig 4.7",
              F.convergence(runs, "mean_cos_sim", reversed_=True)),
        Entry("ga_vs_de_mean", "Mean cos_sim per generation (plain orientation)", "fig 4.7, plain",
              F.convergence(runs, "mean_cos_sim")),
        Entry("ga_vs_de_final_images", "Best image of each run", "fig 4.8", F.final_images(runs, client, seeds)),
        Entry("ga_vs_de_best_reversed", "Best reversed cos_sim per generation, 95 % CI over seeds", "fig 4.9",
              F.convergence(runs, "best_cos_sim", reversed_=True)),
        Entry("ga_vs_de_best", "Best cos_sim per generation (plain orientation)", "fig 4.9, plain",
              F.convergence(runs, "best_cos_sim")),
        Entry("ga_vs_de_population_measures", "Diversity, colour leak and truth_match of the population",
              "text of §4.2 (diversity loss, colour leaking into the background)",
              F.population_measures(runs, ["diversity", "pop_colour_leak", "pop_truth_match"])),
    ]


def generators(runs: Runs, client: MlflowClient, settings: Settings) -> list[Entry]:
    prompts = sorted(runs.runs["prompt"].unique())
    entries = [
        Entry(f"generators_best_images_{slug(prompt)}", f'Best images per generator, "{prompt}"', "figs 4.10–4.13",
              F.generator_best_images(runs, client, prompt))
        for prompt in prompts
    ]
    entries.append(Entry("generators_final_cos_sim", "Final best cos_sim per generator and prompt",
                         "figs 4.10–4.13, in numbers", F.final_strip(runs, "best_cos_sim")))
    return entries


def baselines(runs: Runs, client: MlflowClient, settings: Settings) -> list[Entry]:
    return [
        Entry("baselines_best", "Best cos_sim per generation, all algorithms", "fig 4.9 with the baselines",
              F.convergence(runs, "best_cos_sim")),
        Entry("baselines_mean", "Mean cos_sim per generation, all algorithms", "fig 4.7 with the baselines",
              F.convergence(runs, "mean_cos_sim")),
    ]


def unseen_prompts(runs: Runs, client: MlflowClient, settings: Settings) -> list[Entry]:
    return [Entry("unseen_prompts_truth_match", "Final truth_match per prompt never captioned in training",
                  "none (is the CLIP fitness exploitable?)", F.final_strip(runs, "truth_match", hue="algorithm"))]


def nsga2_realness(runs: Runs, client: MlflowClient, settings: Settings) -> list[Entry]:
    seeds = sorted(runs.runs["seed"].unique())[:4]
    return [
        Entry("nsga2_realness_fronts", "Final NSGA-II fronts (realness vs cos_sim) of a few seeds, and GA's best",
              "CLIP-GLaSS's two objectives", F.fronts(runs, client, seeds)),
        Entry("nsga2_realness_best_realness", "Realness of the best image (NSGA-II: the pick) per generation",
              "none", F.convergence(runs, "best_realness")),
    ]


def realness_table(runs: Runs, out: Path) -> str:
    """Realness, cos_sim and the classifier's confidence in the target class, of NSGA-II's pick
    and the GA's best, mean [95 % CI] over seeds."""
    table = stats.mean_ci(runs.runs, REALNESS_METRICS, ["prompt", "algorithm"])
    table.to_csv(out / "nsga2_realness.csv", index=False)
    shown = table[["prompt", "algorithm", "runs"]].copy()
    for metric in REALNESS_METRICS:
        shown[metric] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                         table[[f"{metric}_mean", f"{metric}_lo", f"{metric}_hi"]].itertuples(index=False)]
    text = stats.markdown(shown)
    (out / "nsga2_realness.md").write_text(text)
    return text


def evolution_vs_gradient(runs: Runs, client: MlflowClient, settings: Settings) -> list[Entry]:
    return [
        Entry("evolution_vs_gradient_cost", "Best cos_sim and classifier accuracy against evaluations and wall time",
              "none (Big Sleep / FuseDream's gradient search against evolution)",
              F.versus_cost(runs, ["best_cos_sim", "eval_accuracy"])),
        Entry("evolution_vs_gradient_best", "Best cos_sim per generation", "fig 4.9 with Adam",
              F.convergence(runs, "best_cos_sim")),
        Entry("evolution_vs_gradient_mean", "Mean cos_sim per generation", "fig 4.7 with Adam",
              F.convergence(runs, "mean_cos_sim")),
    ]


def penalties(runs: Runs, client: MlflowClient, settings: Settings) -> list[Entry]:
    data = P.with_all(P.penalty_runs(runs), "object_prompt")
    return [Entry("penalties_final", "colour_leak, truth_match and the object term's cos_sim, with and without the "
                  "penalty '-a <c> background'", "none (prompt algebra: does a penalty help?)",
                  F.condition_points(data, P.PENALTY_METRICS, "object_prompt", "condition",
                                     P.CONDITIONS["penalties"], f"{runs.experiment}: final values per prompt"))]


def image_prompts(runs: Runs, client: MlflowClient, settings: Settings) -> list[Entry]:
    data = P.with_all(P.image_prompt_runs(runs), "target")
    return [Entry("image_prompts_final", "truth_match against the target scene: caption, rendered scene, or both",
                  "none (image prompts)",
                  F.condition_points(data, P.IMAGE_METRICS, "target", "condition", P.CONDITIONS["image_prompts"],
                                     f"{runs.experiment}: final values per target scene"))]


def augclip(runs: Runs, client: MlflowClient, settings: Settings) -> list[Entry]:
    data = P.with_all(P.augclip_runs(runs), "prompt")
    return [Entry("augclip_final", "truth_match, the classifier's verdict and wall time per evaluation, augment=crops "
                  "against none, on held-out prompts", "none (FuseDream's AugCLIP: is the fitness harder to fool?)",
                  F.condition_points(data, P.AUGCLIP_METRICS, "prompt", "augment", P.CONDITIONS["augclip"],
                                     f"{runs.experiment}: final values per held-out prompt"))]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


DRAW = {"ga_vs_de": ga_vs_de, "generators": generators, "baselines": baselines, "unseen_prompts": unseen_prompts,
        "evolution_vs_gradient": evolution_vs_gradient, "thesis_ga_vs_de": ga_vs_de,
        **{name: generators for name in THESIS_EXPERIMENTS[1:]}, "nsga2_realness": nsga2_realness,
        "penalties": penalties, "image_prompts": image_prompts, "augclip": augclip}


def save(entry: Entry, out: Path) -> None:
    for suffix in ("png", "pdf"):
        entry.figure.savefig(out / f"{entry.name}.{suffix}", dpi=150, bbox_inches="tight")
    plt.close(entry.figure)


def write_table(table: pd.DataFrame, out: Path, name: str) -> str:
    table.to_csv(out / f"{name}.csv", index=False)
    text = stats.markdown(stats.mean_pm_std(table))
    (out / f"{name}.md").write_text(text)
    return text


def write_ci_table(table: pd.DataFrame, out: Path, name: str) -> str:
    """CSV as it is; Markdown with each <metric>_mean, _lo, _hi as one column 'mean [lo, hi]'."""
    table.to_csv(out / f"{name}.csv", index=False)
    shown = table[[c for c in table if not c.endswith(("_mean", "_lo", "_hi"))]].copy()
    for metric in (c.removesuffix("_mean") for c in table if c.endswith("_mean")):
        shown[metric] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                         table[[f"{metric}_mean", f"{metric}_lo", f"{metric}_hi"]].itertuples(index=False)]
    text = stats.markdown(shown)
    (out / f"{name}.md").write_text(text)
    return text


def observation_lines(obs: pd.DataFrame, early: pd.DataFrame) -> list[str]:
    """The thesis's observations, each with the numbers that support or contradict it."""
    lines = []
    for row in early.itertuples():
        lines.append(
            f"- GA ahead of DE early ({row.generator}, \"{row.prompt}\"): {row.metric} at generation "
            f"{int(obs['early_generation'].iloc[0])}, median GA {row.median_ga:.4f} vs DE {row.median_de:.4f}, "
            f"Mann–Whitney p = {row.p_value:.3g}, rank-biserial {row.rank_biserial:+.2f} (> 0: GA ahead)."
        )
    for row in obs.itertuples():
        where = f"{F.algorithm_name(row.algorithm)}, {row.generator}, \"{row.prompt}\""
        lines.append(f"- Plateau ({where}): {row.late_improvement_share:.1%} of the best cos_sim's improvement "
                     f"came in the last quarter of the generations.")
        lines.append(f"- Diversity ({where}): {row.first_diversity:.3f} at generation 0, {row.final_diversity:.3f} "
                     f"at the last ({row.diversity_kept:.0%} kept).")
        if pd.notna(getattr(row, "final_pop_colour_leak", float("nan"))):
            lines.append(f"- Colour leak ({where}): background in the object's colour in "
                         f"{row.first_pop_colour_leak:.1%} of the population at generation 0, "
                         f"{row.final_pop_colour_leak:.1%} at the last; best image leaks in "
                         f"{row.final_colour_leak:.0%} of runs.")
    return lines


def build(out: Path, settings: Settings, experiments: list[str], run: bool, fraction: float,
          store: Store | None = None) -> list[str]:
    """Runs the missing sweeps (if `run`) into the store (default: paths=default's), draws every
    figure, writes tables and the index. Returns the experiments that had no runs to draw."""
    store = store or selected()
    out.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(store.uri)
    index = [f"# Figures\n\nFrom the MLflow store `{store.uri}`. Curves: mean over runs (seeds) with a 95 % "
             f"bootstrap confidence band. cos_sim: CLIP cosine similarity, dimensionless.\n"]
    if settings is QUICK:
        index.append("Quick build (a few seeds, 12 generations, population 8): it shows that every figure can be "
                     "drawn; its numbers say nothing about the thesis's claims.\n")
    tables, skipped = [], []
    for name in experiments:
        if run:
            run_missing(name, [*settings.overrides[name], *store.overrides])
        runs = load_runs(name, uri=store.uri, cache_dir=store.cache)
        if not len(runs):
            print(f"{name}: no finished runs, nothing drawn (run `make figures` or experiments/run.sh {name})")
            skipped.append(name)
            continue
        index.append(f"\n## {name} ({len(runs)} runs)\n\n| figure | thesis | file |\n|---|---|---|")
        for entry in DRAW[name](runs, client, settings):
            save(entry, out)
            index.append(f"| {entry.title} | {entry.thesis} | [{entry.name}.png]({entry.name}.png), "
                         f"[pdf]({entry.name}.pdf) |")
            print(f"{name}: {out / entry.name}.png")
        for table_name, table in P.TABLES.get(name, lambda _: {})(runs).items():
            index.append(f"\n{table_name} (final values, mean and 95 % CI over runs: `_lo`, `_hi`):\n\n"
                         + write_ci_table(table, out, table_name))
        tables.append((name, runs))
    index += summary_sections(out, tables, settings, fraction)
    (out / "index.md").write_text("\n".join(index) + "\n")
    print(f"index: {out / 'index.md'}")
    return skipped


def summary_sections(out: Path, tables: list[tuple[str, Runs]], settings: Settings, fraction: float) -> list[str]:
    """summary, rank_tests and observations tables over all experiments, and their index text."""
    if not tables:
        return []
    sections = []
    if "nsga2_realness" in dict(tables):
        sections += ["\n## NSGA-II (cos_sim, realness) against GA: the best image (NSGA-II: the front's pick), "
                     "mean [95 % CI] over seeds; eval_best_target_probability: the independent classifier's "
                     "probability of the asked shape\n", realness_table(dict(tables)["nsga2_realness"], out)]
    summary = pd.concat([stats.summary(runs, fraction).assign(experiment=name) for name, runs in tables])
    tests = pd.concat([stats.rank_tests(runs.runs, ["best_cos_sim", "mean_cos_sim"]).assign(experiment=name)
                       for name, runs in tables])
    sections += [
        f"\n## Summary (final values, mean and std over runs; generations and evaluations to "
        f"{fraction:.0%} of the best cos_sim's improvement from generation 0)\n",
        write_table(summary, out, "summary"),
        "\n## GA vs DE: two-sided Mann–Whitney U on final values (rank-biserial > 0: GA higher)\n",
        write_table(tests, out, "rank_tests"),
    ]
    obs = pd.concat([stats.observations(runs, settings.early_generation).assign(experiment=name)
                     for name, runs in tables])
    early = pd.concat([stats.early_lead_tests(runs, settings.early_generation).assign(experiment=name)
                       for name, runs in tables])
    for name, runs in tables:
        if name == "evolution_vs_gradient":
            for cost in ("n_evals", "wall_s"):
                sections += [f"\n## {name}: every algorithm at the largest {cost} all runs reached (mean, 95 % "
                             "bootstrap CI over runs; difference of means to Adam with its CI, Mann–Whitney p)\n",
                             write_table(equal_cost(runs, cost), out, f"{name}_equal_{cost}")]
    sections += ["\n## The thesis's observations, in numbers\n"]
    if "ga_vs_de" in dict(tables):
        in_ga_vs_de = obs[obs["experiment"] == "ga_vs_de"]
        sections.append("\n".join(observation_lines(in_ga_vs_de, early[early["experiment"] == "ga_vs_de"])) + "\n")
    sections += [
        "Per algorithm and setting, every experiment (means over runs; `late_improvement_share`: share of the "
        "best cos_sim's improvement made in the last quarter of the generations; `*_colour_leak`: background in "
        "the object's colour, shapes generator only):\n",
        write_table(obs, out, "observations"),
        "\nGA vs DE at the early generation (Mann–Whitney U, rank-biserial > 0: GA ahead):\n",
        write_table(early, out, "early_lead_tests"),
    ]
    return sections


def equal_cost(runs: Runs, cost: str) -> pd.DataFrame:
    return stats.at_equal_cost(runs.history, ["best_cos_sim", "eval_accuracy"], cost, "adam")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("figures"))
    parser.add_argument("--run-missing", action="store_true", help="first run the sweep jobs not in the store")
    parser.add_argument("--quick", action="store_true", help="a few seeds and generations (figures-quick)")
    parser.add_argument("--experiments", nargs="+", choices=EXPERIMENTS + EXTRA_EXPERIMENTS + THESIS_EXPERIMENTS,
                        default=list(EXPERIMENTS))
    parser.add_argument("--fraction", type=float, default=0.95, help="of the improvement, for generations-to-target")
    add_store_arguments(parser)


def main(args: argparse.Namespace) -> None:
    skipped = build(args.out, QUICK if args.quick else FULL, args.experiments, args.run_missing, args.fraction,
                    from_args(args))
    if skipped and args.run_missing:
        raise LatentevoError(f"no finished runs for {', '.join(skipped)}")
