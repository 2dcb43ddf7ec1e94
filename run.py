"""Evolve latents toward a prompt: `python run.py prompt='a red circle'`; sweep with -m.

Configuration lives in conf/ (see `python run.py --help`); runs are tracked in MLflow.
"""

import hydra
from omegaconf import DictConfig

from latentevo.cli import exit_on_error, run_task


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    # imported where a job runs: a sweep whose packs run in worker processes composes its jobs
    # here without loading torch and the search libraries
    from latentevo.pipeline import run_job

    return run_task(run_job, cfg)


if __name__ == "__main__":
    exit_on_error(main)
