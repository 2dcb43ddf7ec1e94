"""Train a model as a tracked experiment: `python train.py model=egan dataset=shapes`.

Models: dcgan, egan (E-GAN), vae, realness (FaceGen's fitness CNN), clip and classifier (the
shapes world's); `world=<recipe>` is a committed shapes-world model's recipe (conf/gan/world/,
what `make world` runs). Configuration in conf/gan/ (`python train.py --help`); runs are tracked
in MLflow like run.py's, and an interrupted one resumes from its checkpoint when the same
command runs again. The trained network is saved where `save` says; a generator is searched with
`python run.py generator=trained_gan`.
"""

import hydra
from omegaconf import DictConfig

from latentevo.cli import exit_on_error, run_task
from latentevo.training.driver import train


@hydra.main(version_base="1.3", config_path="conf/gan", config_name="train")
def main(cfg: DictConfig) -> float:
    return run_task(train, cfg)


if __name__ == "__main__":
    exit_on_error(main)
