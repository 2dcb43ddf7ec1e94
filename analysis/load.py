"""MLflow runs -> tidy pandas frames: one row per run (its settings and final metrics), and one
row per run x generation (its settings and every metric logged at that generation).

    runs = load_runs("ga_vs_de")
    runs.history.query("algorithm == 'ga'").groupby("generation")["best_cos_sim"].mean()

Each history row also has `wall_s`, the seconds from the run's start to its best_cos_sim's
timestamp at that generation: the run's own time where its jobs ran one at a time.

Metric histories are cached in a file keyed on the runs' ids and end times, so a second load of
unchanged runs reads no history from the store.
"""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run

from latentevo.identity import IDENTITY_TAG
from latentevo.paths import PROJECT_DIR
from latentevo.tracking import tracking_uri

DEFAULT_CACHE_DIR = PROJECT_DIR / ".cache" / "analysis"
# the params the analysis groups and plots runs by, under the names it uses (which job a run was
# is its identity tag, latentevo.identity)
COLUMNS = {
    "choice.algo": "algorithm",
    "choice.generator": "generator",
    "choice.augment": "augment",
    "prompt": "prompt",
    "image_prompt": "image_prompt",
    "seed": "seed",
    "generations": "generations",
    "pop_size": "pop_size",
}
INT_COLUMNS = ("seed", "generations", "pop_size")
#: how MLflow logs a null param (a run without an image prompt; runs from before image prompts have none)
NULL_PARAM = "None"
#: the augment option of a run that logged none (the group's default: each image scored as it is)
NO_AUGMENT = "none"
# the run table's columns before its metrics
BASE_COLUMNS = ["run_id", "start_time", "end_time", "artifact_uri", "job", *COLUMNS.values()]
# the metric whose timestamps give each generation's wall time (logged every generation)
TIMED_METRIC = "best_cos_sim"
# what a cached history holds; a new version reads the histories from the store again
CACHE_VERSION = 2
# MLflow's largest page for search_runs
PAGE_SIZE = 1000
# concurrent metric-history requests: each is one small store query
HISTORY_WORKERS = 8


@dataclass
class Runs:
    experiment: str
    runs: pd.DataFrame  # one row per run: run_id, job (its identity), COLUMNS, final value of every metric
    history: pd.DataFrame  # one row per run x generation: run_id, COLUMNS, generation, metrics

    def __len__(self) -> int:
        return len(self.runs)


def client_for(uri: str | None) -> tuple[MlflowClient, str]:
    """A client on `uri`, else on the project's store, and the URI it uses."""
    uri = uri or tracking_uri()
    return MlflowClient(tracking_uri=uri), uri


def search_finished(client: MlflowClient, experiment: str, filter_string: str = "") -> list[Run]:
    """Every FINISHED run of the experiment that matches the MLflow filter, page by page."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = " and ".join(f for f in ("attributes.status = 'FINISHED'", filter_string) if f)
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], query, max_results=PAGE_SIZE, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def run_table(runs: list[Run]) -> pd.DataFrame:
    """One row per run; a job run again (same identity) counts once, its latest run kept, so
    that a re-run sweep does not weigh some seeds twice."""
    rows = [
        {"run_id": r.info.run_id, "start_time": r.info.start_time, "end_time": r.info.end_time,
         "artifact_uri": r.info.artifact_uri, "job": r.data.tags.get(IDENTITY_TAG)}
        | {column: r.data.params.get(param) for param, column in COLUMNS.items()}
        | r.data.metrics
        for r in runs
    ]
    table = pd.DataFrame(rows)
    table = table.reindex(columns=[*BASE_COLUMNS, *sorted(set(table.columns) - set(BASE_COLUMNS))])
    for column in INT_COLUMNS:
        table[column] = pd.to_numeric(table[column]).astype("Int64")
    table["image_prompt"] = table["image_prompt"].fillna(NULL_PARAM)
    table["augment"] = table["augment"].fillna(NO_AUGMENT)
    table["prompt"] = [target_label(text, image) for text, image in zip(table["prompt"], table["image_prompt"])]
    table = table.sort_values("end_time").drop_duplicates("job", keep="last")
    return table.sort_values(list(COLUMNS.values())).reset_index(drop=True)


def target_label(prompt: str, image_prompt: str) -> str:
    """What a run aimed at, as tables and figures name it: its prompt, with its image prompt
    ('a red star + image scene:...', 'image scene:...' alone)."""
    if image_prompt == NULL_PARAM:
        return prompt
    image = f"image {image_prompt}"
    return image if prompt in (None, NULL_PARAM, "") else f"{prompt} + {image}"


def _histories(client: MlflowClient, runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    def one(run_id: str, start_ms: int, key: str) -> list[tuple[str, int, str, float]]:
        points = client.get_metric_history(run_id, key)
        timed = [(run_id, p.step, "wall_s", (p.timestamp - start_ms) / 1000) for p in points]
        return [(run_id, p.step, key, p.value) for p in points] + (timed if key == TIMED_METRIC else [])

    jobs = [(run_id, start, key) for run_id, start in zip(runs["run_id"], runs["start_time"]) for key in metrics]
    with ThreadPoolExecutor(HISTORY_WORKERS) as pool:
        points = [p for chunk in pool.map(lambda job: one(*job), jobs) for p in chunk]
    long = pd.DataFrame(points, columns=["run_id", "generation", "metric", "value"])
    if long.empty:
        return pd.DataFrame(columns=["run_id", "generation"])
    wide = long.pivot_table(index=["run_id", "generation"], columns="metric", values="value", aggfunc="last")
    return wide.reset_index().rename_axis(columns=None)


def _digest(*parts: object) -> str:
    return hashlib.sha1("\n".join(map(str, parts)).encode()).hexdigest()[:16]


def _cache_files(
    cache_dir: Path, uri: str, experiment: str, filter_string: str, runs: pd.DataFrame
) -> tuple[Path, list[Path]]:
    """The cache file of this query of this store, named so that it changes whenever the set of
    runs or any run's end time changes; and the query's older, stale cache files."""
    prefix = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', experiment)}-{_digest(uri, experiment, filter_string)}"
    current = cache_dir / f"{prefix}-{_digest(CACHE_VERSION, *runs['run_id'], *runs['end_time'])}.pkl"
    return current, [f for f in cache_dir.glob(f"{prefix}-*.pkl") if f != current]


def load_runs(
    experiment: str,
    filter_string: str = "",
    uri: str | None = None,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
) -> Runs:
    """The experiment's finished runs that match `filter_string` (MLflow search syntax, e.g.
    "params.`choice.algo` = 'ga'"), as a run table and a per-generation history.
    `cache_dir=None` reads every history from the store."""
    client, uri = client_for(uri)
    runs = run_table(search_finished(client, experiment, filter_string))
    if runs.empty:
        return Runs(experiment, runs, pd.DataFrame(columns=["run_id", *COLUMNS.values(), "generation"]))
    metrics = list(runs.columns[len(BASE_COLUMNS):])
    if cache_dir is None:
        history = _histories(client, runs, metrics)
    else:
        cache, stale = _cache_files(cache_dir, uri, experiment, filter_string, runs)
        if cache.is_file():
            history = pd.read_pickle(cache)
        else:
            history = _histories(client, runs, metrics)
            cache_dir.mkdir(parents=True, exist_ok=True)
            history.to_pickle(cache)
            for old in stale:
                old.unlink()
    settings = runs[["run_id", *COLUMNS.values()]]
    history = settings.merge(history, on="run_id", how="inner").sort_values([*COLUMNS.values(), "generation"])
    return Runs(experiment, runs, history.reset_index(drop=True))


def logged_generations(client: MlflowClient, run_id: str) -> list[int]:
    """Generations whose population grid the run logged (population/gen_NNNN.png)."""
    names = (Path(a.path).name for a in client.list_artifacts(run_id, "population"))
    return sorted(int(m.group(1)) for m in map(re.compile(r"gen_(\d+)\.png$").search, names) if m)


def artifact_file(client: MlflowClient, run_id: str, path: str, dst: Path) -> Path:
    """A local copy of one artifact of the run, under dst."""
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst)))
