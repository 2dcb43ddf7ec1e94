"""Statistics the thesis does not give: final values with their spread over seeds, how fast each
algorithm gets there, rank tests between algorithms, and its observations put in numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import bootstrap, mannwhitneyu, t

from .load import Runs

# runs of one setting; a store may hold the same sweep at several lengths or population sizes
GROUP = ["algorithm", "generator", "augment", "prompt", "generations", "pop_size"]
SETTING = GROUP[1:]
FINAL_METRICS = ["best_cos_sim", "mean_cos_sim", "truth_match", "pop_truth_match"]
# float tolerance when asking whether a curve has reached its own final value
EPS = 1e-12


def time_to_fraction(history: pd.DataFrame, fraction: float, metric: str = "best_cos_sim") -> pd.DataFrame:
    """Per run, the first generation (and evaluations spent by then) at which `metric` has made
    `fraction` of its whole improvement from generation 0 to the last generation. (Measured on the
    improvement, not the raw value: cos_sim starts far from 0, so a fraction of the raw final value
    is often reached before the search has done anything.)"""
    h = history.sort_values(["run_id", "generation"])
    values = h.groupby("run_id")[metric]
    start, final = values.transform("first"), values.transform("last")
    reached = h[h[metric] >= start + fraction * (final - start) - EPS]
    first = reached.groupby("run_id")[["generation", "n_evals"]].first()
    return first.rename(columns={"generation": "generations_to_target", "n_evals": "evals_to_target"}).reset_index()


def summary(runs: Runs, fraction: float = 0.95) -> pd.DataFrame:
    """Per algorithm x generator x prompt (x generations x pop_size): runs, final metrics' mean and
    std over seeds, and the generations and evaluations to `fraction` of the best cos_sim's
    improvement."""
    table = runs.runs.merge(time_to_fraction(runs.history, fraction), on="run_id")
    measured = [m for m in FINAL_METRICS if m in table] + ["generations_to_target", "evals_to_target"]
    stats = table.groupby(GROUP)[measured].agg(["mean", "std"])
    stats.columns = [f"{metric}_{stat}" for metric, stat in stats.columns]
    stats.insert(0, "runs", table.groupby(GROUP).size())
    return stats.reset_index()


def rank_biserial(u: float, n_a: int, n_b: int) -> float:
    """Effect size of a Mann–Whitney U for the first sample: the probability that a run of A beats
    a run of B minus the reverse, in [-1, 1]."""
    return 2 * u / (n_a * n_b) - 1


def rank_tests(table: pd.DataFrame, metrics: list[str], a: str = "ga", b: str = "de") -> pd.DataFrame:
    """Two-sided Mann–Whitney U of algorithm `a` against `b` per setting (generator x prompt x
    generations x pop_size) and metric, over the rows of `table` (one per run)."""
    rows = []
    for setting, group in table.groupby(SETTING):
        for metric in metrics:
            x = group.loc[group["algorithm"] == a, metric].dropna()
            y = group.loc[group["algorithm"] == b, metric].dropna()
            if x.empty or y.empty:
                continue
            test = mannwhitneyu(x, y, alternative="two-sided")
            rows.append({
                **dict(zip(SETTING, setting)), "metric": metric,
                f"n_{a}": len(x), f"n_{b}": len(y), f"median_{a}": x.median(), f"median_{b}": y.median(),
                "U": test.statistic, "p_value": test.pvalue,
                "rank_biserial": rank_biserial(test.statistic, len(x), len(y)),
            })
    return pd.DataFrame(rows)


def value_at(run: pd.DataFrame, metric: str, cost: str, x) -> np.ndarray:
    """One run's `metric` at each cost in `x`: its last value logged at a cost <= x (a best so
    far and a population's accuracy hold until they are logged again)."""
    run = run.dropna(subset=[metric, cost]).sort_values(cost)
    return run[metric].to_numpy()[np.searchsorted(run[cost].to_numpy(), x, side="right") - 1]


def on_common_grid(history: pd.DataFrame, metric: str, cost: str, points: int = 60) -> pd.DataFrame:
    """Each run's `metric` against `cost` (n_evals, wall_s) on a grid of `points` costs per
    algorithm, spanning the costs that all of its runs reached, so that runs whose costs differ
    (wall time) can be averaged point by point."""
    frames = []
    for algo, group in history.dropna(subset=[metric, cost]).groupby("algorithm"):
        runs = [run for _, run in group.groupby("run_id")]
        grid = np.linspace(max(r[cost].min() for r in runs), min(r[cost].max() for r in runs), points)
        frames += [pd.DataFrame({"algorithm": algo, "run_id": run["run_id"].iloc[0], cost: grid,
                                 metric: value_at(run, metric, cost, grid)}) for run in runs]
    return pd.concat(frames, ignore_index=True)


def _ci(*samples, statistic) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of `statistic` over independent resamples (seed 0)."""
    if min(len(s) for s in samples) < 2:
        return np.nan, np.nan
    ci = bootstrap(samples, statistic, confidence_level=0.95, method="percentile", random_state=0,
                   vectorized=False).confidence_interval
    return float(ci.low), float(ci.high)


def at_equal_cost(history: pd.DataFrame, metrics: list[str], cost: str, reference: str) -> pd.DataFrame:
    """Every algorithm at the largest `cost` all runs reached: per metric the mean over runs with
    its 95 % bootstrap CI, and the difference of means to the `reference` algorithm with its CI
    and a two-sided Mann–Whitney U p-value."""
    rows = []
    budget = history.groupby("run_id")[cost].max().min()
    for metric in metrics:
        values = {algo: np.array([value_at(run, metric, cost, budget) for _, run in group.groupby("run_id")])
                  for algo, group in history.dropna(subset=[metric, cost]).groupby("algorithm")}
        ref = values.get(reference)
        for algo, x in values.items():
            row = {"metric": metric, cost: budget, "algorithm": algo, "runs": len(x), "mean": x.mean()}
            row["ci_low"], row["ci_high"] = _ci(x, statistic=np.mean)
            if ref is not None and algo != reference:
                row[f"minus_{reference}"] = x.mean() - ref.mean()
                row["diff_ci_low"], row["diff_ci_high"] = _ci(x, ref, statistic=lambda a, b: a.mean() - b.mean())
                row["p_value"] = mannwhitneyu(x, ref, alternative="two-sided").pvalue
            rows.append(row)
    return pd.DataFrame(rows)


def at_generation(history: pd.DataFrame, generation: int) -> pd.DataFrame:
    """One row per run: its metrics at the logged generation nearest to `generation`."""
    nearest = history.assign(gap=(history["generation"] - generation).abs())
    return nearest.sort_values(["run_id", "gap"]).groupby("run_id").head(1).drop(columns="gap")


def observations(runs: Runs, early_generation: int, late_share: float = 0.25) -> pd.DataFrame:
    """The thesis's observations in numbers, per algorithm x generator x prompt (means over runs):
    best and mean cos_sim at an early generation; the share of the best cos_sim's improvement made
    in the last `late_share` of the generations (near 0: a plateau); diversity at the first and
    last generation; and the fraction of the population (and of best images) whose background has
    the prompt's object colour (colour leak) at the first and last generation."""
    h = runs.history
    last = h["generations"].astype(int) - 1
    early = at_generation(h, early_generation)
    first, final = h[h["generation"] == 0], h[h["generation"] == last]
    late_start = h[h["generation"] == (last * (1 - late_share)).round().astype(int)]

    def per_run(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
        present = {k: v for k, v in columns.items() if k in frame}
        return frame.set_index("run_id")[list(present)].rename(columns=present)

    table = pd.concat([
        runs.runs.set_index("run_id")[GROUP],
        per_run(early, {"best_cos_sim": "early_best_cos_sim", "mean_cos_sim": "early_mean_cos_sim"}),
        per_run(first, {"best_cos_sim": "first_best_cos_sim", "diversity": "first_diversity",
                        "pop_colour_leak": "first_pop_colour_leak"}),
        per_run(late_start, {"best_cos_sim": "late_start_best_cos_sim"}),
        per_run(final, {"best_cos_sim": "final_best_cos_sim", "diversity": "final_diversity",
                        "pop_colour_leak": "final_pop_colour_leak", "colour_leak": "final_colour_leak"}),
    ], axis=1)
    improvement = table["final_best_cos_sim"] - table["first_best_cos_sim"]
    late = table["final_best_cos_sim"] - table.pop("late_start_best_cos_sim")
    table["late_improvement_share"] = (late / improvement).where(improvement > 0, 0.0)
    table["diversity_kept"] = table["final_diversity"] / table["first_diversity"]
    out = table.groupby(GROUP).mean(numeric_only=True)
    out.insert(0, "runs", table.groupby(GROUP).size())
    out.insert(1, "early_generation", int(early["generation"].median()))
    return out.reset_index()


def early_lead_tests(runs: Runs, early_generation: int) -> pd.DataFrame:
    """GA against DE at an early generation: is GA ahead early, as the thesis saw?"""
    return rank_tests(at_generation(runs.history, early_generation), ["best_cos_sim", "mean_cos_sim"])


def mean_pm_std(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Each pair of columns X_mean, X_std as one text column X, "mean ± std", for reading."""
    def pm(mean: float, std: float) -> str:
        if pd.isna(mean):
            return ""
        return f"{mean:.{digits}g}" + ("" if pd.isna(std) else f" ± {std:.2g}")

    columns = {}
    for column in table.columns:
        metric = column.removesuffix("_mean")
        if column.endswith("_mean") and f"{metric}_std" in table:
            columns[metric] = [pm(m, s) for m, s in zip(table[column], table[f"{metric}_std"])]
        elif not (column.endswith("_std") and f"{column.removesuffix('_std')}_mean" in table):
            columns[column] = table[column]
    return pd.DataFrame(columns)


def markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table (pandas' own to_markdown needs the `tabulate` package, which the
    project does not depend on)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:.{digits}g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def mean_ci(table: pd.DataFrame, metrics: list[str], by: list[str], level: float = 0.95) -> pd.DataFrame:
    """Per group of `by`: runs, and each metric's mean with its Student-t confidence interval at
    `level` over the group's runs (one value per run), as <metric>_mean, <metric>_lo, <metric>_hi."""
    rows = []
    for key, group in table.groupby(by):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,))) | {"runs": len(group)}
        for metric in metrics:
            values = group[metric].dropna()
            lo, hi = t_interval(values, level)
            row |= {f"{metric}_mean": values.mean(), f"{metric}_lo": lo, f"{metric}_hi": hi}
        rows.append(row)
    return pd.DataFrame(rows)


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The Student-t confidence interval of the mean of `values` (NaN for fewer than two)."""
    values = pd.Series(values, dtype=float).dropna()
    if len(values) < 2:
        return float("nan"), float("nan")
    half = t.ppf((1 + level) / 2, len(values) - 1) * values.std() / len(values) ** 0.5
    return values.mean() - half, values.mean() + half
