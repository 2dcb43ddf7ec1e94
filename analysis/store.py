"""Which tracking store an analysis reads, chosen as run.py's is: a conf/paths/ option
(`--paths quick`), its store replaced by `--store` if given; `--run-missing`'s jobs get the same
overrides, so they write where the analysis reads."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir

from latentevo.paths import PROJECT_DIR, resolve
from latentevo.tracking import tracking_uri


@dataclass(frozen=True)
class Store:
    overrides: list[str]  # run.py's overrides that select it
    uri: str
    cache: Path  # the paths option's cache of metric histories and predictions


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--paths", default="default", metavar="OPTION",
                        help="the conf/paths/ option whose tracking store and cache to use, as run.py paths=OPTION")
    parser.add_argument("--store", help="a tracking store instead of the option's: an MLflow URI, or a directory "
                                        "(its mlflow.db)")


def selected(option: str = "default", store: str | None = None) -> Store:
    overrides = [f"paths={option}", *([f"paths.store='{store}'"] if store else [])]
    with initialize_config_dir(config_dir=str(PROJECT_DIR / "conf"), version_base="1.3"):
        paths = compose("config", overrides=overrides).paths
    return Store(overrides, tracking_uri(paths.store), resolve(paths.cache))


def from_args(args: argparse.Namespace) -> Store:
    return selected(args.paths, args.store)
