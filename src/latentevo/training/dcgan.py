"""DCGAN training on shapes-world renders (Adam 2e-4, beta1 0.5, non-saturating loss).

Flat-coloured renders are easy to tell from a young generator's noise: the discriminator wins
within a hundred steps and the generator's gradient vanishes. Instance noise on both inputs of
the discriminator (annealed to zero over the first `noise_anneal` of the steps) and one-sided
label smoothing keep the game going."""

from __future__ import annotations

import copy
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
    upsample: str = "transposed"
    seed: int = 2
    instance_noise: float = 0.15
    noise_anneal: float = 0.5
    real_label: float = 0.9
    # Decay of an exponential moving average of the generator's weights, returned instead of the
    # last iterate when > 0: it averages out the oscillation of the adversarial game.
    ema: float = 0.0


def real_batch(n: int, g: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """Renders in [-1, 1], every shape x colour pair included: the DCGAN models the whole world."""
    return render(random_scenes(n, g).to(device), RESOLUTION) * 2 - 1


def with_noise(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    return x + sigma * torch.randn(x.shape, generator=g, device=x.device) if sigma > 0 else x


def _update_ema(ema: DCGANNetG, net: DCGANNetG, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), net.parameters()):
            e.lerp_(p, 1 - decay)
        for e, b in zip(ema.buffers(), net.buffers()):
            e.copy_(b)


def train_dcgan(
    cfg: DCGANTrainConfig,
    log=lambda step, metrics: None,
    progress=None,
    device: torch.device | str = "cpu",
    checkpoint=None,
    checkpoint_every: int = 0,
) -> DCGANNetG:
    """The trained generator (its EMA when `cfg.ema` > 0), in eval mode on `device`.

    Scenes are drawn on the CPU from the seed; latents and noise come from the same generator
    on the CPU, or from a second one seeded alike on an accelerator. `checkpoint(step, net)` is
    called every `checkpoint_every` steps with the network that would be returned."""
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    g_dev = g if device.type == "cpu" else torch.Generator(device).manual_seed(cfg.seed)
    net_g, net_d = DCGANNetG(cfg.nz, cfg.ngf, cfg.upsample), DCGANNetD(cfg.ndf)
    net_g.apply(init_weights)
    net_d.apply(init_weights)
    net_g, net_d = net_g.to(device), net_d.to(device)
    ema = copy.deepcopy(net_g).eval() if cfg.ema > 0 else None
    opt_g = torch.optim.Adam(net_g.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    ones, zeros = torch.ones(cfg.batch_size, device=device), torch.zeros(cfg.batch_size, device=device)
    for step in range(cfg.steps):
        sigma = cfg.instance_noise * max(0.0, 1 - step / (cfg.noise_anneal * cfg.steps))

        def noisy(x: torch.Tensor) -> torch.Tensor:
            return with_noise(x, sigma, g_dev)

        real = real_batch(cfg.batch_size, g, device)
        fake = net_g(torch.randn(cfg.batch_size, cfg.nz, generator=g_dev, device=device))
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
        if ema is not None:
            _update_ema(ema, net_g, cfg.ema)
        # Reading a loss waits for the accelerator: only every 20 steps.
        if step % 20 == 0 or step == cfg.steps - 1:
            losses = {"loss_d": loss_d.item(), "loss_g": loss_g.item()}
            log(step, losses | {"instance_noise": sigma})
            if progress is not None:
                progress.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        if progress is not None:
            progress.update(1)
        if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
            result = ema if ema is not None else net_g.eval()
            checkpoint(step + 1, result)
            net_g.train()
    return (ema if ema is not None else net_g).eval()
