"""The prompt-algebra and image-prompt experiments (conf/experiment/penalties.yaml,
image_prompts.yaml): which condition each run was, and final measures per condition with 95 %
confidence intervals over seeds.

- penalties: "a <c> <shape>" alone or with "| -a <c> background"; colour_leak (the best image's
  background in colour c), truth_match, and the cos_sim to the object term (term 0) it paid;
  the penalty's effect paired by seed (both runs of a seed start from the same population).
- image_prompts: a scene given as its caption (text), as the rendered scene (image) or both;
  truth_match against the scene's attributes.
- augclip: augment=crops against none on held-out prompts; truth_match, the independent
  classifier's verdict on the best image and the final population, and wall time per evaluation;
  the difference paired by seed (both arms of a seed start from the same population).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentevo.prompts import SCENE_PREFIX, parse_scene
from latentevo.world.captions import content_dict, parse_prompt

from .load import NULL_PARAM, Runs
from .stats import mean_ci

PENALTY_MARK = " | -"
#: the penalties sweep's prompts whose shape x colour pair no mini-CLIP training caption named
HELD_OUT = ("a purple circle", "an orange square")
CONDITIONS = {"penalties": ["plain", "penalised"], "image_prompts": ["text", "image", "both"],
              "augclip": ["none", "crops"]}
ALL = "all prompts"


def with_all(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows, and the same rows again pooled under `column` = ALL."""
    return pd.concat([frame, frame.assign(**{column: ALL})], ignore_index=True)


def penalty_runs(runs: Runs) -> pd.DataFrame:
    """One row per run: object_prompt, condition, held_out, object_cos_sim (term 0's, or the
    plain prompt's cos_sim), colour_leak, truth_match, best_cos_sim, seed."""
    table = runs.runs.copy()
    table["object_prompt"] = table["prompt"].str.split(PENALTY_MARK, regex=False).str[0]
    table["condition"] = np.where(table["prompt"].str.contains(PENALTY_MARK, regex=False), "penalised", "plain")
    table["held_out"] = table["object_prompt"].isin(HELD_OUT)
    terms = table["term0_cos_sim"] if "term0_cos_sim" in table else np.nan
    table["object_cos_sim"] = pd.Series(terms, index=table.index).fillna(table["best_cos_sim"])
    return table


PENALTY_METRICS = ["colour_leak", "truth_match", "object_cos_sim"]


def penalty_tables(runs: Runs) -> dict[str, pd.DataFrame]:
    table = penalty_runs(runs)
    by_condition = mean_ci(with_all(table, "object_prompt"), PENALTY_METRICS, ["object_prompt", "condition"])
    effect_table = paired_effects(table, PENALTY_METRICS, "object_prompt", "condition", *CONDITIONS["penalties"])
    effect_table.insert(1, "held_out", effect_table["object_prompt"].isin(HELD_OUT))
    return {"penalties_by_condition": by_condition, "penalties_effect": effect_table}


def scene_label(attributes: dict[str, str]) -> str:
    return f"{attributes['colour']} {attributes['shape']} on {attributes['background']}"


def image_prompt_runs(runs: Runs) -> pd.DataFrame:
    """One row per run: target (the scene, e.g. 'red star on blue'), condition, truth_match,
    exact_match (all of the scene's attributes), best_cos_sim, seed."""
    table = runs.runs.copy()
    has_image = table["image_prompt"] != NULL_PARAM
    has_text = ~table["prompt"].str.startswith("image ")
    table["condition"] = np.select([has_image & has_text, has_image], ["both", "image"], "text")
    table["target"] = [
        scene_label(parse_scene(image.removeprefix(SCENE_PREFIX))) if image != NULL_PARAM
        else scene_label(content_dict(parse_prompt(text)))
        for text, image in zip(table["prompt"], table["image_prompt"])
    ]
    table["exact_match"] = (table["truth_match"] == 1).astype(float)
    return table


IMAGE_METRICS = ["truth_match", "exact_match", "best_cos_sim"]


def image_prompt_tables(runs: Runs) -> dict[str, pd.DataFrame]:
    table = with_all(image_prompt_runs(runs), "target")
    return {"image_prompts_by_condition": mean_ci(table, IMAGE_METRICS, ["target", "condition"])}


def per_eval_ms(history: pd.DataFrame) -> pd.Series:
    """Per run, milliseconds of wall time per evaluation from its first logged generation to its
    last: the search's own time, model loading and the final artifacts left out (its runs must
    have run one at a time for it to be the run's own; a pack's runs share each generation)."""
    h = history.dropna(subset=["wall_s", "n_evals"]).sort_values(["run_id", "generation"]).groupby("run_id")
    first, last = h.first(), h.last()
    return 1000 * (last["wall_s"] - first["wall_s"]) / (last["n_evals"] - first["n_evals"])


def paired_effects(table: pd.DataFrame, metrics: list[str], by: str, condition: str, base: str,
                   treated: str) -> pd.DataFrame:
    """Per `by` (and pooled), the mean difference treated - base of each metric between the two
    runs of a seed, with its t-interval, as delta_<metric>_mean, _lo, _hi."""
    paired = table.pivot_table(index=[by, "seed"], columns=condition, values=metrics)
    effects = pd.DataFrame({m: paired[(m, treated)] - paired[(m, base)] for m in metrics}).dropna().reset_index()
    effect_table = mean_ci(with_all(effects, by), metrics, [by])
    return effect_table.rename(columns={f"{m}{end}": f"delta_{m}{end}" for m in metrics
                                        for end in ("_mean", "_lo", "_hi")})


def augclip_runs(runs: Runs) -> pd.DataFrame:
    """One row per run: prompt, augment (none or crops), truth_match, exact_match (every attribute
    the prompt names), eval_best_correct (the classifier names the asked shape in the best image),
    eval_accuracy (... in the final population), ms_per_eval, best_cos_sim, seed."""
    table = runs.runs.copy()
    table["exact_match"] = (table["truth_match"] == 1).astype(float)
    table["ms_per_eval"] = table["run_id"].map(per_eval_ms(runs.history))
    return table


AUGCLIP_METRICS = ["truth_match", "exact_match", "eval_best_correct", "eval_accuracy", "ms_per_eval"]


def augclip_tables(runs: Runs) -> dict[str, pd.DataFrame]:
    table = augclip_runs(runs)
    by_arm = mean_ci(with_all(table, "prompt"), AUGCLIP_METRICS, ["prompt", "augment"])
    effect = paired_effects(table, AUGCLIP_METRICS, "prompt", "augment", *CONDITIONS["augclip"])
    return {"augclip_by_arm": by_arm, "augclip_effect": effect}


TABLES = {"penalties": penalty_tables, "image_prompts": image_prompt_tables, "augclip": augclip_tables}
