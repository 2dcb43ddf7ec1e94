"""DCGAN training on shapes-world renders (Adam 2e-4, beta1 0.5, non-saturating loss).

Flat-coloured renders are easy to tell from a young generator's noise: the discriminator wins
within a hundred steps and the generator's gradient vanishes. Instance noise on both inputs of
the discriminator (annealed to zero over the first half) and one-sided label smoothing keep
the game going."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.dcgan import DCGANNetD, DCGANNetG, init_weights
from ..world import random_scenes, render

RESOLUTION = 32


@dataclass
class DCGANTrainConfig:
    steps: int = 5000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    seed: int = 2
    instance_noise: float = 0.15
    real_label: float = 0.9


def real_batch(n: int, g: torch.Generator) -> torch.Tensor:
    """Renders in [-1, 1], every shape x colour pair included: the DCGAN models the whole world."""
    return render(random_scenes(n, g), RESOLUTION) * 2 - 1


def with_noise(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    return x + sigma * torch.randn(x.shape, generator=g) if sigma > 0 else x


def train_dcgan(cfg: DCGANTrainConfig, log=lambda step, metrics: None, progress=None) -> DCGANNetG:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    net_g, net_d = DCGANNetG(cfg.nz, cfg.ngf), DCGANNetD(cfg.ndf)
    net_g.apply(init_weights)
    net_d.apply(init_weights)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    ones, zeros = torch.ones(cfg.batch_size), torch.zeros(cfg.batch_size)
    for step in range(cfg.steps):
        sigma = cfg.instance_noise * max(0.0, 1 - 2 * step / cfg.steps)

        def noisy(x: torch.Tensor) -> torch.Tensor:
            return with_noise(x, sigma, g)

        real = real_batch(cfg.batch_size, g)
        fake = net_g(torch.randn(cfg.batch_size, cfg.nz, generator=g))
        loss_d = F.binary_cross_entropy_with_logits(
            net_d(noisy(real)), ones * cfg.real_label
        ) + F.binary_cross_entropy_with_logits(net_d(noisy(fake.detach())), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(net_d(noisy(fake)), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if step % 20 == 0 or step == cfg.steps - 1:
            log(step, {"loss_d": loss_d.item(), "loss_g": loss_g.item()})
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}", refresh=False)
    return net_g.eval()
