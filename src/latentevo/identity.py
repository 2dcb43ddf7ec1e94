"""What run.py, train.py, pixel_ga.py and the analysis mean by "the same job": one identity, one
tag, one query.

A job's identity is a sha256 over its resolved config, less the keys below, and over the
contents (sha256) of every weight file its models load. Runs carry it as the tag `IDENTITY_TAG`;
a job is done when its experiment has a FINISHED run with its identity (`finished_run`).

Not part of a job's identity (`NOT_IDENTITY`, top-level keys; `weights` at any depth):

- `threads`, `device`, `batch_size`: where the arithmetic runs and in what chunks. On the CPU
  with one thread a run's cos_sims do not depend on the batch its images are scored in
  (docs/packs.md); with several threads or on a GPU they change the rounding, not what is
  computed, as does the pack a job happens to run in. (A model's own `batch_size`, train.py's
  `model.batch_size`, is a training setting and part of the identity.)
- `checkpoint_every`, `resume`, `skip_finished`: how a job survives an interruption, and
  whether a finished one runs again.
- `paths` (conf/paths/: the tracking store, checkpoint, weights and Hydra's directories), and the
  file paths a task names itself (train.py's `save`, pixel_ga.py's `realness`: `extra_keys`):
  where a job's files are. A weight file's contents count instead: the same files elsewhere are
  the same job, a replaced file makes a new one.
- `weights`, at any depth: a weights directory (a model's, the quality's Inception), as above.
- `image_prompt` and `image_prompt_weight` while `image_prompt` is null (`UNSET_NOT_IDENTITY`),
  so that text-only jobs keep the identity they had before image prompts. An image prompt's file
  counts by its path and its contents (sha256), as a weight file does.

Everything else is part of it: prompt, seed, population, generations, `log_every`, every
generator, scorer, algorithm (each operator setting), augmentation and evaluation setting;
train.py's model, data set and quality settings; the experiment. The code is not (a run's commit
is among its provenance tags), nor is a data set's content.

A model builder (a config node's `_target_`) that loads weight files says which with
`@reads_weights`; a task that loads files outside its config's models passes them to
`job_identity` itself.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError

if TYPE_CHECKING:  # the models mark their builders with this module, and need no MLflow for it
    from mlflow import MlflowClient
    from mlflow.entities import Run

NOT_IDENTITY = ("threads", "device", "batch_size", "checkpoint_every", "resume", "skip_finished", "paths")
#: top-level keys left out while the key they belong to is null: a job without an image prompt
#: keeps the identity it had before image prompts existed
UNSET_NOT_IDENTITY = {"image_prompt": ("image_prompt", "image_prompt_weight")}
#: the weights directory's key, dropped wherever it is (top level, generator, clip, ...)
WEIGHTS_DIR = "weights"
#: the MLflow tag that holds a run's job identity
IDENTITY_TAG = "config_hash"
#: hex digits of the identity kept (80 bits)
LENGTH = 20

Builder = TypeVar("Builder", bound=Callable[..., Any])


def reads_weights(files: Callable[..., Iterable[Path]]) -> Callable[[Builder], Builder]:
    """Marks a model builder with `files`, which is called with the builder's arguments (defaults
    filled in) and returns the weight files the builder would load, so that a job's identity
    hashes them without building the model."""

    def mark(builder: Builder) -> Builder:
        builder.weight_files = files
        return builder

    return mark


def job_identity(cfg: DictConfig, extra_files: Iterable[Path] = (), extra_keys: Iterable[str] = ()) -> str:
    """The job's identity: its config less NOT_IDENTITY and `extra_keys` (a task's own file
    paths), and the contents of the weight files its config's models read plus `extra_files`
    (those a task loads by itself)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    values = _without_weights_dirs(resolved)
    for key in (*NOT_IDENTITY, *extra_keys):
        values.pop(key, None)
    for switch, keys in UNSET_NOT_IDENTITY.items():
        if switch in values and values[switch] is None:
            for key in keys:
                values.pop(key)
    files = [*weight_files(resolved), *extra_files]
    contents = sorted({file_sha256(Path(f)) for f in files})
    text = json.dumps({"config": values, "weights": contents}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:LENGTH]


def finished_run(client: MlflowClient, experiment_id: str, identity: str) -> Run | None:
    """A FINISHED run of the job in the experiment, if there is one."""
    query = f"tags.{IDENTITY_TAG} = '{identity}' and attributes.status = 'FINISHED'"
    found = client.search_runs([experiment_id], query, max_results=1)
    return found[0] if found else None


def weight_files(values: Any) -> list[Path]:
    """The weight files the models of a resolved config (as plain containers) would load."""
    return [Path(f) for node in _target_nodes(values) for f in _builder_files(node)]


def file_sha256(path: Path) -> str:
    """The file's sha256 ('absent:<name>' when there is none), computed once per path, size and
    modification time: a pack of 100 runs on one model reads its weights once."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return f"absent:{path.name}"
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _without_weights_dirs(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: _without_weights_dirs(v) for k, v in values.items() if k != WEIGHTS_DIR}
    if isinstance(values, list):
        return [_without_weights_dirs(v) for v in values]
    return values


def _target_nodes(values: Any) -> Iterator[dict]:
    if isinstance(values, dict):
        if "_target_" in values:
            yield values
        for value in values.values():
            yield from _target_nodes(value)
    elif isinstance(values, list):
        for value in values:
            yield from _target_nodes(value)


def _builder_files(node: dict) -> Iterable[Path]:
    target = node["_target_"]
    try:
        builder = get_object(target)
    except ImportError as err:
        raise ConfigError(f"_target_ {target} cannot be imported: {str(err).splitlines()[0]}") from None
    files = getattr(builder, "weight_files", None)
    if files is None:
        return []
    try:
        arguments = inspect.signature(builder).bind(**{k: v for k, v in node.items() if not k.startswith("_")})
    except TypeError as err:
        raise ConfigError(f"{target} does not take these settings: {err}") from None
    arguments.apply_defaults()
    return files(**arguments.arguments)
