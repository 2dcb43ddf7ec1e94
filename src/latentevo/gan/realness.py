"""FaceGen's fitness (section 3.1.3): a CNN regressing how real an image is, trained on the
data set's images with a Bernoulli(p) mask of their values replaced by uniform noise, labelled
1 - p, so that it scores the noisy images a pixel-space GA produces on a graded scale."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .datasets import ImageSource


class RealnessCNN(nn.Module):
    """(B, 3, 32, 32) in [0, 1] -> (B,) realness in [0, 1]."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.width = width
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, width * 2, 4, 2, 1), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width * 2, width * 4, 4, 2, 1), nn.BatchNorm2d(width * 4), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width * 4, 1, 4, 1, 0),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(images * 2 - 1).flatten())


def bernoulli_noise(images: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image with a fraction p ~ U(0, 1) of its values (genes) replaced by uniform noise,
    as GA mutation does; returns the noised images and their labels 1 - p."""
    p = torch.rand(len(images), generator=g)
    mask = torch.rand(images.shape, generator=g) < p[:, None, None, None]
    noise = torch.rand(images.shape, generator=g)
    return torch.where(mask, noise, images), 1 - p


@dataclass
class RealnessConfig:
    iterations: int
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 32


class RealnessTrainer:
    """Regression with squared error on (noised image, 1 - p) pairs from fresh batches."""

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

    def export(self) -> tuple[dict[str, torch.Tensor], dict]:
        return self.net.state_dict(), {"model": "realness", "architecture": {"width": self.cfg.width}}
