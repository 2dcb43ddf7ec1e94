"""FaceGen's genetic algorithm directly on pixels: `python pixel_ga.py fitness=realness` (the
realness CNN trained by `python train.py model=realness`) or `fitness=clip prompt='a red circle'`
(CLIP search with the identity generator, a baseline for latent search). Config:
conf/gan/pixel_ga.yaml; runs are tracked in MLflow.
"""

import hydra
from omegaconf import DictConfig

from latentevo.cli import exit_on_error, run_task
from latentevo.training.pixel_ga import pixel_search


@hydra.main(version_base="1.3", config_path="conf/gan", config_name="pixel_ga")
def main(cfg: DictConfig) -> float:
    return run_task(pixel_search, cfg)


if __name__ == "__main__":
    exit_on_error(main)
