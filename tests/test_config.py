"""The Hydra configs: every group option composes and builds; sweeps expand as documented."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from latentevo.callbacks import sweep_size
from latentevo.models.base import Generator, Scorer
from latentevo.pipeline.models import build_scorer
from latentevo.pipeline.spec import validate
from latentevo.search import PriorSampling

CONF = str(Path(__file__).resolve().parents[1] / "conf")
TOP_LEVEL = {"prompt", "seed", "generations", "pop_size", "log_every", "experiment_name", "device"}


def composed(*overrides: str, hydra: bool = False):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def test_defaults_are_the_thesis_setting():
    cfg = composed()
    assert TOP_LEVEL <= set(cfg)
    assert (cfg.generations, cfg.pop_size, cfg.log_every, cfg.device) == (200, 16, 10, "auto")
    validate(cfg)


@pytest.mark.parametrize("algo", ["ga", "de", "de_best1_bin", "de_rand1_exp", "cmaes", "random"])
def test_every_algorithm_builds_with_the_shared_pop_size(algo):
    cfg = composed(f"algo={algo}", "pop_size=12")
    algorithm = instantiate(cfg.algo, sampling=PriorSampling(lambda n, rng: rng.standard_normal((n, 4))))
    size = getattr(algorithm, "pop_size", None) or getattr(algorithm, "n_points_per_iteration", None)
    assert size == 12 or algorithm.options["popsize"] == 12


def test_generators_and_scorers_build_and_fit_together():
    cfg = composed("generator=dcgan_shapes", "generator.random_init=true", "clip.random_init=true", "augment=crops")
    generator = instantiate(cfg.generator)
    scorer = build_scorer(cfg, torch.device("cpu"))
    assert isinstance(generator, Generator) and isinstance(scorer, Scorer)
    assert (generator.latent_dim, generator.resolution) == (129, 32)
    images = generator(generator.sample_latents(2, torch.Generator().manual_seed(0)))
    assert scorer.cos_sim(images, scorer.embed_text(["a red circle"])[0]).shape == (2,)


@pytest.mark.parametrize("name, jobs", [("ga_vs_de", 100), ("generators", 120), ("baselines", 60)])
def test_experiment_overlays_expand_to_their_sweeps(name, jobs):
    cfg = composed(f"experiment={name}", hydra=True)
    assert cfg.experiment_name == name
    assert sweep_size(cfg) == jobs


def test_command_line_sweeps_are_counted_like_hydra_expands_them():
    cfg = OmegaConf.create({"hydra": {"sweeper": {"params": None},
                                      "overrides": {"task": ["algo=ga,de", "seed=range(50)"]}}})
    assert sweep_size(cfg) == 100


def test_sweeps_are_packed_by_default_and_the_other_launchers_stay():
    launcher = composed(hydra=True).hydra.launcher
    assert launcher._target_ == "hydra_plugins.latentevo_launcher.packed_launcher.PackedLauncher"
    assert (launcher.pack_size, launcher.workers) == (100, None)
    parallel = composed("hydra/launcher=parallel", hydra=True).hydra.launcher
    assert parallel._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert composed("hydra/launcher=local", hydra=True).hydra.launcher._target_.endswith("BasicLauncher")
