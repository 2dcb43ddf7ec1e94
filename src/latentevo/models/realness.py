"""How real an image looks: FaceGen's fitness (section 3.1.3), a CNN regressing how real an image
is, trained on images with a fraction of their values replaced by noise
(`latentevo.training.realness`); and the `Realness` interface the search's realness objective
reads (CLIP-GLaSS: a GAN discriminator's D(x))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
        return batch_invariant_sigmoid(self.net(images * 2 - 1).flatten())


def batch_invariant_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """sigmoid in float64, back in x's dtype: float32 `sigmoid` takes another code path for the
    last elements of a tensor, so an image's score moved by an ulp with its place in the batch
    (a packed run's realness would not be its realness alone)."""
    return torch.sigmoid(x.double()).to(x.dtype)


class Realness(nn.Module):
    """(B, 3, H, W) images in [0, 1] -> (B,) in [0, 1], how real `net` judges each: resized to
    the net's `resolution` first (area when shrinking), fed in [-1, 1] with `signed_input`, and
    squashed by a sigmoid when the net gives `logits` (a discriminator's). Put in eval mode:
    batch norm uses its running statistics, so an image's realness does not depend on the
    images beside it in a batch."""

    def __init__(self, net: nn.Module, resolution: int, signed_input: bool = True, logits: bool = True):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.resolution, self.signed_input, self.logits = resolution, signed_input, logits

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, torch.float32)
        if x.shape[-1] != self.resolution:
            mode = "area" if x.shape[-1] > self.resolution else "bilinear"
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode=mode)
        out = self.net(x * 2 - 1 if self.signed_input else x).flatten().float()
        return batch_invariant_sigmoid(out) if self.logits else out
