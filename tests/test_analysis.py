"""analysis/: the loader, figures, statistics and sweep bookkeeping on a temporary MLflow store
filled by real short runs of the pipeline; and the ground-truth metrics those runs log."""

import os
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.entities import Metric, Param, RunTag
from pipeline_cli import MECHANICS_CLIP, ROOT, run_cli, runs_of
from scipy.stats import mannwhitneyu, t

from analysis import figures, load, prompts, stats
from analysis.load import load_runs
from analysis.make_figures import EXPERIMENTS, FULL, QUICK
from analysis.sweeps import missing_jobs
from latentevo.identity import IDENTITY_TAG
from latentevo.models.shapes import ShapesGenerator
from latentevo.pipeline.measures import ground_truth
from latentevo.tracking import open_experiment
from latentevo.world import COLOURS

GENERATIONS = 6
SHORT = [f"generations={GENERATIONS}", "pop_size=8", "log_every=2", "hydra/launcher=local", *MECHANICS_CLIP]
GA_VS_DE = ["seed=0,1", *SHORT]


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store):
    """A store with the ga_vs_de sweep (GA, DE x 2 seeds) and a generators sweep (shapes, DCGAN
    x 1 prompt x 1 seed), each run for a few generations."""
    uri = new_store(tmp_path_factory.mktemp("mlflow"))
    for args in (["experiment=ga_vs_de", *GA_VS_DE],
                 ["experiment=generators", "algo=ga", "seed=0", "prompt='a red circle'", *SHORT]):
        result = run_cli(["-m", *args], uri, tmp_path_factory.mktemp("sweep"))
        assert result.returncode == 0, result.stderr[-2000:]
    return uri


@pytest.fixture(scope="module")
def ga_vs_de(store, tmp_path_factory):
    return load_runs("ga_vs_de", uri=store, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def generators(store):
    return load_runs("generators", uri=store, cache_dir=None)


# --- loader ------------------------------------------------------------------------------------


def test_loader_has_one_row_per_run_and_generation_with_every_metric(store, ga_vs_de):
    client, runs = runs_of(store, "ga_vs_de")
    assert len(ga_vs_de) == 4 and set(ga_vs_de.runs["run_id"]) == {r.info.run_id for r in runs}
    assert sorted(zip(ga_vs_de.runs["algorithm"], ga_vs_de.runs["seed"])) == [
        ("de", 0), ("de", 1), ("ga", 0), ("ga", 1)]
    assert set(ga_vs_de.runs["generator"]) == {"shapes"}
    assert set(ga_vs_de.runs["prompt"]) == {"a yellow star on a blue background"}
    history = ga_vs_de.history
    assert len(history) == 4 * GENERATIONS
    for _, steps in history.groupby("run_id")["generation"]:
        assert sorted(steps) == list(range(GENERATIONS))
    for metric in ("best_cos_sim", "mean_cos_sim", "std_cos_sim", "diversity", "n_evals", "truth_match",
                   "pop_truth_match", "colour_leak", "pop_colour_leak"):
        assert history[metric].notna().all(), metric
    run = runs[0]
    logged = {p.step: p.value for p in client.get_metric_history(run.info.run_id, "mean_cos_sim")}
    loaded = history[history["run_id"] == run.info.run_id].set_index("generation")["mean_cos_sim"]
    assert loaded.to_dict() == logged
    final = ga_vs_de.runs.set_index("run_id").loc[run.info.run_id]
    assert final["best_cos_sim"] == run.data.metrics["best_cos_sim"]
    # wall time: seconds from the run's start to each generation's best_cos_sim
    points = client.get_metric_history(run.info.run_id, "best_cos_sim")
    wall = history[history["run_id"] == run.info.run_id].set_index("generation")["wall_s"]
    assert wall.to_dict() == {p.step: (p.timestamp - run.info.start_time) / 1000 for p in points}
    assert (wall >= 0).all() and wall.is_monotonic_increasing


def test_loader_filters_with_mlflow_search_syntax(store):
    ga = load_runs("ga_vs_de", "params.`choice.algo` = 'ga'", uri=store, cache_dir=None)
    assert len(ga) == 2 and set(ga.history["algorithm"]) == {"ga"}
    assert len(load_runs("no such experiment", uri=store, cache_dir=None)) == 0


def test_history_cache_is_used_until_the_runs_change(store, tmp_path, monkeypatch):
    client, experiment_id = open_experiment("cache-check", store)

    def finished_run(seed: int) -> None:
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(run_id, params=[Param("choice.algo", "ga"), Param("seed", str(seed))],
                         metrics=[Metric("best_cos_sim", 0.1 * g, 0, g) for g in range(3)],
                         tags=[RunTag(IDENTITY_TAG, f"seed {seed}")])
        client.set_terminated(run_id, "FINISHED")

    finished_run(0)
    first = load_runs("cache-check", uri=store, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pkl"))) == 1

    def no_store(*args):
        raise AssertionError("history read from the store although the runs did not change")

    with monkeypatch.context() as patch:
        patch.setattr(load, "_histories", no_store)
        again = load_runs("cache-check", uri=store, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first.history, again.history)

    finished_run(1)
    changed = load_runs("cache-check", uri=store, cache_dir=tmp_path)
    assert sorted(changed.history["seed"].unique()) == [0, 1] and len(changed.history) == 6
    assert len(list(tmp_path.glob("*.pkl"))) == 1  # the stale cache is gone


# --- figures -----------------------------------------------------------------------------------


def assert_drawn(fig, path: Path) -> None:
    fig.savefig(path, dpi=60)
    image = mpimg.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 20  # more than a blank canvas


@pytest.mark.parametrize("metric", ["best_cos_sim", "mean_cos_sim"])
@pytest.mark.parametrize("reversed_", [False, True])
def test_convergence_figure(ga_vs_de, tmp_path, metric, reversed_):
    fig = figures.convergence(ga_vs_de, metric, reversed_=reversed_)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GA (2 runs)", "DE/rand/1/bin (2 runs)"]
    ga_line = ax.get_lines()[0]
    expected = ga_vs_de.history.query("algorithm == 'ga'").groupby("generation")[metric].mean()
    np.testing.assert_allclose(ga_line.get_ydata(), -expected if reversed_ else expected)
    assert ga_line.get_color() == "tab:blue" and ax.get_lines()[1].get_color() == "tab:orange"
    assert_drawn(fig, tmp_path / "f.png")


def test_image_figures(store, ga_vs_de, generators, tmp_path):
    client, _ = runs_of(store, "ga_vs_de")
    drawn = [
        figures.population_grid(ga_vs_de, client, 3, seed=0),  # nearest logged grid: generation 2 or 4
        figures.final_images(ga_vs_de, client, [0, 1]),
        figures.population_measures(ga_vs_de, ["diversity", "pop_colour_leak", "pop_truth_match"]),
        figures.generator_best_images(generators, client, "a red circle"),
        figures.final_strip(generators, "best_cos_sim"),
    ]
    for i, fig in enumerate(drawn):
        assert_drawn(fig, tmp_path / f"{i}.png")
    assert "generation 2" in drawn[0].axes[0].get_title()
    assert [ax.get_ylabel() for ax in drawn[3].axes if ax.get_ylabel()] == ["shapes (procedural)", "DCGAN"]


def test_nearest_logged_generation():
    assert figures.nearest_logged([0, 10, 20, 199], [10, 100, 200]) == [10, 20, 199]
    assert figures.nearest_logged([0, 3, 6, 9, 11], [3, 6, 12, 11]) == [3, 6, 11]


# --- statistics --------------------------------------------------------------------------------


def test_summary_matches_a_direct_computation(store, ga_vs_de):
    _, runs = runs_of(store, "ga_vs_de")
    direct = pd.DataFrame([{"algorithm": r.data.params["choice.algo"], **r.data.metrics} for r in runs])
    table = stats.summary(ga_vs_de).set_index("algorithm")
    for metric in ("best_cos_sim", "mean_cos_sim", "truth_match"):
        expected = direct.groupby("algorithm")[metric].agg(["mean", "std"])
        np.testing.assert_allclose(table.loc[expected.index, f"{metric}_mean"], expected["mean"])
        np.testing.assert_allclose(table.loc[expected.index, f"{metric}_std"], expected["std"])
    assert table["runs"].to_dict() == {"de": 2, "ga": 2}


def test_time_to_fraction_of_the_improvement(store, ga_vs_de):
    client, runs = runs_of(store, "ga_vs_de")
    times = stats.time_to_fraction(ga_vs_de.history, 0.5).set_index("run_id")
    for run in runs:
        best = [p.value
                for p in sorted(client.get_metric_history(run.info.run_id, "best_cos_sim"), key=lambda p: p.step)]
        target = best[0] + 0.5 * (best[-1] - best[0])
        generation = next(g for g, value in enumerate(best) if value >= target - 1e-12)
        evals = {p.step: p.value for p in client.get_metric_history(run.info.run_id, "n_evals")}
        assert times.loc[run.info.run_id, "generations_to_target"] == generation
        assert times.loc[run.info.run_id, "evals_to_target"] == evals[generation]


def test_rank_test_ga_vs_de(ga_vs_de):
    table = stats.rank_tests(ga_vs_de.runs, ["best_cos_sim"]).iloc[0]
    ga = ga_vs_de.runs.query("algorithm == 'ga'")["best_cos_sim"]
    de = ga_vs_de.runs.query("algorithm == 'de'")["best_cos_sim"]
    test = mannwhitneyu(ga, de, alternative="two-sided")
    assert (table["U"], table["p_value"]) == (test.statistic, test.pvalue)
    # rank-biserial: P(GA run beats DE run) - P(DE run beats GA run), ties counting half
    wins = sum((g > d) - (g < d) for g in ga for d in de) / (len(ga) * len(de))
    assert table["rank_biserial"] == pytest.approx(wins)
    assert stats.rank_biserial(4, 2, 2) == 1 and stats.rank_biserial(0, 2, 2) == -1


def test_observations_put_the_thesis_in_numbers(ga_vs_de):
    obs = stats.observations(ga_vs_de, early_generation=2).set_index("algorithm")
    h = ga_vs_de.history
    for algo in ("ga", "de"):
        runs = h[h["algorithm"] == algo]
        first, last = runs[runs["generation"] == 0], runs[runs["generation"] == GENERATIONS - 1]
        assert obs.loc[algo, "first_diversity"] == pytest.approx(first["diversity"].mean())
        assert obs.loc[algo, "final_diversity"] == pytest.approx(last["diversity"].mean())
        assert obs.loc[algo, "final_pop_colour_leak"] == pytest.approx(last["pop_colour_leak"].mean())
        assert obs.loc[algo, "early_mean_cos_sim"] == pytest.approx(
            runs[runs["generation"] == 2]["mean_cos_sim"].mean())
        assert 0 <= obs.loc[algo, "late_improvement_share"] <= 1
    assert set(stats.early_lead_tests(ga_vs_de, 2)["metric"]) == {"best_cos_sim", "mean_cos_sim"}


def cost_history() -> pd.DataFrame:
    """Two algorithms x three runs; adam's runs reach different wall times and log accuracy
    every other generation."""
    rows = []
    for algo, gain in (("ga", 0.01), ("adam", 0.02)):
        for seed in range(3):
            for g in range(5):
                rows.append({"algorithm": algo, "run_id": f"{algo}{seed}", "n_evals": 16 * (g + 1),
                             "wall_s": (g + 1) * (1 + seed), "best_cos_sim": 0.5 + gain * g + 0.001 * seed,
                             "eval_accuracy": g / 4 if algo == "ga" or g % 2 == 0 else np.nan})
    return pd.DataFrame(rows)


def test_runs_on_a_common_cost_grid_hold_their_last_logged_value():
    grid = stats.on_common_grid(cost_history(), "eval_accuracy", "wall_s", points=5)
    adam = grid[grid["algorithm"] == "adam"]
    # adam's fastest run ends at 5 s, its slowest starts at 3 s: the grid spans what all reached
    assert sorted(adam["wall_s"].unique()) == [3, 3.5, 4, 4.5, 5]
    slowest = adam[adam["run_id"] == "adam2"].set_index("wall_s")["eval_accuracy"]
    assert slowest.to_dict() == {3: 0.0, 3.5: 0.0, 4: 0.0, 4.5: 0.0, 5: 0.0}  # generation 2 is logged at 9 s
    fastest = adam[adam["run_id"] == "adam0"].set_index("wall_s")["eval_accuracy"]
    assert fastest.to_dict() == {3: 0.5, 3.5: 0.5, 4: 0.5, 4.5: 0.5, 5: 1.0}


def test_algorithms_compared_at_equal_n_evals_with_confidence_intervals():
    table = stats.at_equal_cost(cost_history(), ["best_cos_sim"], "n_evals", "adam").set_index("algorithm")
    assert (table["n_evals"] == 80).all()
    assert table.loc["ga", "mean"] == pytest.approx(0.541) and table.loc["adam", "mean"] == pytest.approx(0.581)
    assert table.loc["ga", "minus_adam"] == pytest.approx(-0.04)
    assert table.loc["ga", "diff_ci_low"] <= -0.04 <= table.loc["ga", "diff_ci_high"] < 0
    assert table.loc["adam", "ci_low"] <= 0.581 <= table.loc["adam", "ci_high"]
    assert pd.isna(table.loc["adam", "minus_adam"])


def test_cost_figure_draws_a_panel_per_metric_and_cost(tmp_path):
    runs = load.Runs("evolution_vs_gradient", pd.DataFrame(), cost_history().assign(prompt="a photo of a star"))
    fig = figures.versus_cost(runs, ["best_cos_sim", "eval_accuracy"])
    assert len(fig.axes) == 4
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["GA (3 runs)", "Adam (gradient) (3 runs)"]
    assert fig.axes[0].get_lines()[1].get_color() == "tab:brown"
    assert_drawn(fig, tmp_path / "cost.png")


def augclip_runs() -> load.Runs:
    """Two prompts x 3 seeds x {none, crops}: crops finds every attribute one seed in three more
    often and costs 4 times the wall time per evaluation (none: 10 ms)."""
    runs, history = [], []
    for prompt in ("a big green star on a black background", "a small white triangle at the top"):
        for seed in range(3):
            for augment, slower in (("none", 1), ("crops", 4)):
                run_id = f"{prompt.split()[2]}-{seed}-{augment}"
                truth = 1.0 if augment == "crops" and seed == 0 else 0.75
                runs.append({"run_id": run_id, "prompt": prompt, "augment": augment, "seed": seed,
                             "truth_match": truth, "eval_best_correct": float(seed != 2), "eval_accuracy": 0.5})
                # generation 0 logged 3 s in (model loading), then 16 evaluations per generation
                history += [{"run_id": run_id, "generation": g, "n_evals": 16 * (g + 1),
                             "wall_s": 3 + 0.16 * slower * g * (1 + 0.1 * seed)} for g in range(5)]
    return load.Runs("augclip", pd.DataFrame(runs), pd.DataFrame(history))


def test_augclip_tables_give_t_intervals_per_arm_and_the_effect_paired_by_seed(tmp_path):
    runs = augclip_runs()
    table = prompts.augclip_runs(runs).set_index("run_id")
    # the search's own time per evaluation, from generation 0 to the last: model loading left out
    assert table.loc["green-0-none", "ms_per_eval"] == pytest.approx(10)
    assert table.loc["green-2-crops", "ms_per_eval"] == pytest.approx(48)
    assert table.loc["green-0-crops", "exact_match"] == 1 and table.loc["green-1-crops", "exact_match"] == 0
    tables = prompts.augclip_tables(runs)
    by_arm = tables["augclip_by_arm"].set_index(["prompt", "augment"])
    ms = [10 * 4 * (1 + 0.1 * seed) for seed in range(3)] * 2  # both prompts, pooled
    lo, hi = stats.t_interval(ms)
    crops = by_arm.loc[(prompts.ALL, "crops")]
    assert crops["runs"] == 6 and crops["ms_per_eval_mean"] == pytest.approx(np.mean(ms))
    assert (crops["ms_per_eval_lo"], crops["ms_per_eval_hi"]) == pytest.approx((lo, hi))
    assert lo == pytest.approx(np.mean(ms) - t.ppf(0.975, 5) * np.std(ms, ddof=1) / 6 ** 0.5)
    effect = tables["augclip_effect"].set_index("prompt")
    # per seed, crops minus none: truth_match +0.25 for seed 0, 0 for the others
    assert effect.loc[prompts.ALL, "runs"] == 6
    assert effect.loc[prompts.ALL, "delta_truth_match_mean"] == pytest.approx(0.25 / 3)
    assert effect.loc[prompts.ALL, "delta_eval_best_correct_mean"] == 0
    assert effect.loc[prompts.ALL, "delta_ms_per_eval_mean"] == pytest.approx(np.mean([30 * (1 + 0.1 * s)
                                                                                       for s in range(3)]))
    data = prompts.with_all(prompts.augclip_runs(runs), "prompt")
    fig = figures.condition_points(data, prompts.AUGCLIP_METRICS, "prompt", "augment", ["none", "crops"], "augclip")
    assert len(fig.axes) == len(prompts.AUGCLIP_METRICS)
    assert_drawn(fig, tmp_path / "augclip.png")


def test_markdown_table_joins_mean_and_std():
    table = pd.DataFrame({"algorithm": ["ga"], "x_mean": [0.51234], "x_std": [0.0123]})
    assert stats.markdown(stats.mean_pm_std(table)).splitlines() == [
        "| algorithm | x |", "|---|---|", "| ga | 0.5123 ± 0.012 |"]


# --- sweeps ------------------------------------------------------------------------------------


def test_missing_jobs_are_those_without_a_finished_run(store):
    assert missing_jobs("ga_vs_de", GA_VS_DE, uri=store) == []
    more_seeds = missing_jobs("ga_vs_de", ["seed=0,1,2", *SHORT], uri=store)
    assert sorted(job[:2] for job in more_seeds) == [["algo=de", "seed=2"], ["algo=ga", "seed=2"]]
    assert len(missing_jobs("ga_vs_de", ["seed=0,1", "generations=7", *SHORT[1:]], uri=store)) == 4


# --- ground truth logged by the pipeline -------------------------------------------------------


def test_colour_leak_says_whether_the_background_has_the_object_colour():
    generator = ShapesGenerator()
    latents = generator.sample_latents(256, torch.Generator().manual_seed(0)).numpy()
    background = generator.scenes(torch.from_numpy(latents)).labels()["background"].numpy()
    red = COLOURS.index("red")
    measures = ground_truth(generator, "a red circle")(latents)
    np.testing.assert_array_equal(measures["colour_leak"], background == red)
    assert 0 < measures["colour_leak"].mean() < 1
    # "a yellow star on a blue background": a yellow background is still a leak
    measures = ground_truth(generator, "a yellow star on a blue background")(latents)
    np.testing.assert_array_equal(measures["colour_leak"], background == COLOURS.index("yellow"))
    # no object colour named, or the prompt asks for that background: nothing leaks
    assert set(ground_truth(generator, "a circle")(latents)) == {"truth_match"}
    assert set(ground_truth(generator, "a red circle on a red background")(latents)) == {"truth_match"}


# --- make figures-quick ------------------------------------------------------------------------


@pytest.mark.slow
def test_make_figures_quick_from_a_clean_store(tmp_path):
    """Every figure, table and the index, from a store with no runs (a few minutes)."""
    out = tmp_path / "figures"
    result = subprocess.run(
        ["make", "figures-quick", f"TRACKING_STORE={tmp_path / 'store'}", f"QUICK_OUT={out}"],
        cwd=ROOT, env=os.environ | {"PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    prompts = ["a_big_green_triangle_at_the_top", "a_small_red_circle_on_the_left",
               "a_yellow_star_on_a_blue_background"]
    stems = [f"ga_vs_de_population_gen{g:04d}" for g in (3, 6, 11)] + [
        "ga_vs_de_mean_reversed", "ga_vs_de_mean", "ga_vs_de_final_images", "ga_vs_de_best_reversed", "ga_vs_de_best",
        "ga_vs_de_population_measures", *(f"generators_best_images_{p}" for p in prompts), "generators_final_cos_sim",
        "baselines_best", "baselines_mean", "unseen_prompts_truth_match",
    ]
    tables = ["summary", "rank_tests", "observations", "early_lead_tests"]
    expected = {f"{s}.{x}" for s in stems for x in ("png", "pdf")} | {f"{t}.{x}" for t in tables for x in ("csv", "md")}
    assert {p.name for p in out.iterdir()} == expected | {"index.md"}
    assert all((out / name).stat().st_size > 1000 for name in expected if not name.endswith((".csv", ".md")))
    index = (out / "index.md").read_text()
    for thesis in ("fig 4.4", "fig 4.5", "fig 4.6", "fig 4.7", "fig 4.8", "fig 4.9", "figs 4.10–4.13"):
        assert thesis in index
    assert all(f"## {name}" in index for name in EXPERIMENTS)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["experiment"]) == set(EXPERIMENTS) and (summary["generations"] == 12).all()


def test_every_experiment_has_a_quick_sweep():
    """`--quick --run-missing --experiments <any>` has a sweep to run for each of them."""
    assert set(QUICK.overrides) == set(FULL.overrides)
