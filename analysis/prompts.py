"""The prompt-algebra and image-prompt experiments (conf/experiment/penalties.yaml,
image_prompts.yaml): which condition each run was, and final measures per condition with 95 %
confidence intervals over seeds.

- penalties: "a <c> <shape>" alone or with "| -a <c> background"; colour_leak (the best image's
  background in colour c), truth_match, and the cos_sim to the object term (term 0) it paid;
  the penalty's effect paired by seed (both runs of a seed start from the same population).
- image_prompts: a scene given as its caption (text), as the rendered scene (image) or both;
  truth_match against the scene's attributes.
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
CONDITIONS = {"penalties": ["plain", "penalised"], "image_prompts": ["text", "image", "both"]}
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
    paired = table.pivot_table(index=["object_prompt", "seed"], columns="condition", values=PENALTY_METRICS)
    effects = pd.DataFrame({m: paired[(m, "penalised")] - paired[(m, "plain")] for m in PENALTY_METRICS})
    effects = effects.dropna().reset_index()
    effect_table = mean_ci(with_all(effects, "object_prompt"), PENALTY_METRICS, ["object_prompt"])
    effect_table = effect_table.rename(columns={f"{m}{end}": f"delta_{m}{end}" for m in PENALTY_METRICS
                                                for end in ("_mean", "_lo", "_hi")})
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


TABLES = {"penalties": penalty_tables, "image_prompts": image_prompt_tables}
