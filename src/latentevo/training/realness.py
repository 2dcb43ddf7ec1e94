"""Training FaceGen's fitness CNN (`models.realness`, section 3.1.3): the data set's images with
a Bernoulli(p) mask of their values replaced by uniform noise, labelled 1 - p, so that it scores
the noisy images a pixel-space GA produces on a graded scale."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.realness import RealnessCNN
from .data import ImageSource
from .recipe import Steps
from .state import StateDicts


def bernoulli_noise(images: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image with a fraction p ~ U(0, 1) of its values (genes) replaced by uniform noise,
    as GA mutation does; returns the noised images and their labels 1 - p."""
    p = torch.rand(len(images), generator=g)
    mask = torch.rand(images.shape, generator=g) < p[:, None, None, None]
    noise = torch.rand(images.shape, generator=g)
    return torch.where(mask, noise, images), 1 - p


@dataclass
class RealnessConfig(Steps):
    width: int = 32


class RealnessTrainer(StateDicts):
    """Regression with squared error on (noised image, 1 - p) pairs from fresh batches."""

    STATE_DICTS = ("net", "opt")

    def __init__(self, cfg: RealnessConfig, source: ImageSource, g: torch.Generator):
        self.cfg, self.source, self.g = cfg, source, g
        self.net = RealnessCNN(cfg.width)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)

    def step(self) -> dict[str, float]:
        images = (self.source.batch(self.cfg.batch_size, self.g) + 1) / 2
        noised, labels = bernoulli_noise(images, self.g)
        loss = F.mse_loss(self.net(noised), labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    def network(self) -> torch.nn.Module:
        return self.net.eval()

    def architecture(self) -> dict:
        return {"width": self.cfg.width}

