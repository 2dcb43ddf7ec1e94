"""DCGAN (Radford et al.) sized for the shapes world: a learned latent space to search."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .base import Generator
from .weights import WORLD_DIR, load_state, load_world_model


class DCGANNetG(nn.Module):
    """z (B, nz) -> (B, 3, 32, 32) in [-1, 1]: batch-normed upsampling stages from 4x4.

    `upsample="transposed"` is Radford et al.'s strided transposed convolution; `"resize"`
    doubles by nearest-neighbour resizing and then applies a 3x3 convolution, which avoids the
    checkerboard texture that overlapping transposed kernels leave on flat colour fields."""

    def __init__(self, nz: int = 100, ngf: int = 64, upsample: str = "transposed"):
        super().__init__()
        if upsample not in ("transposed", "resize"):
            raise ValueError(f"unknown upsample {upsample!r}: transposed or resize")
        self.nz = nz

        def up(c_in: int, c_out: int) -> list[nn.Module]:
            if upsample == "transposed":
                return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
            return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)]

        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            *up(ngf * 4, ngf * 2),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            *up(ngf * 2, ngf),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            *up(ngf, 3),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANNetD(nn.Module):
    """(B, 3, 32, 32) in [-1, 1] -> (B,) real/fake logit."""

    def __init__(self, ndf: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(Generator):
    """A trained DCGAN generator behind the pipeline's Generator interface."""

    resolution = 32

    def __init__(self, net: DCGANNetG, latent_bound: float = 3.0):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.latent_dim = net.nz
        self.latent_bound = latent_bound

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        return (self.net(z) + 1) / 2


def dcgan_shapes(random_init: bool = False, weights_dir: str | Path = WORLD_DIR, latent_bound: float = 3.0) -> DCGANGenerator:
    """The DCGAN trained on shapes-world renders (or the same network randomly initialised)."""
    if random_init:
        net = DCGANNetG()
        net.apply(init_weights)
        return DCGANGenerator(net, latent_bound)
    state, config = load_world_model("dcgan", Path(weights_dir))
    net = DCGANNetG(**config["architecture"])
    load_state(net, state, Path(weights_dir) / "dcgan.safetensors")
    return DCGANGenerator(net, latent_bound)
