"""Train a generative model as a tracked experiment: `python train.py model=egan dataset=shapes`.

Models: dcgan, egan (E-GAN), vae, realness (FaceGen's fitness CNN); configuration in conf/gan/
(`python train.py --help`); runs are tracked in MLflow like run.py's. The trained generator is
saved where `save` says and searched with `python run.py generator=trained_gan`.
"""

import hydra
from omegaconf import DictConfig

from latentevo.cli import exit_on_error
from latentevo.training.driver import train_job


@hydra.main(version_base="1.3", config_path="conf/gan", config_name="train")
def main(cfg: DictConfig) -> float:
    return train_job(cfg)


if __name__ == "__main__":
    exit_on_error(main)
