"""FaceGen's fitness (section 3.1.3): a CNN regressing how real an image is, trained on images
with a fraction of their values replaced by noise (`latentevo.training.realness`)."""

from __future__ import annotations

import torch
from torch import nn


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
