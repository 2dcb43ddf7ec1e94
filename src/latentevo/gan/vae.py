"""A convolutional VAE as FaceGen builds it (appendix B.1), at 32 px: encoder blocks of 4x4
stride-2 convolution + batch norm + LeakyReLU, then dense layers to μ and log σ²; decoder a
dense layer, reshape, and 4x4 stride-2 transposed convolutions + batch norm + ReLU, tanh out."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .datasets import ImageSource


class VAEDecoder(nn.Module):
    """z (B, nz) -> (B, 3, 32, 32) in [-1, 1]."""

    def __init__(self, nz: int = 150, width: int = 64):
        super().__init__()
        self.nz, self.width = nz, width
        self.fc = nn.Linear(nz, width * 4 * 4 * 4)
        self.net = nn.Sequential(
            nn.BatchNorm2d(width * 4), nn.ReLU(True),
            nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1), nn.BatchNorm2d(width * 2), nn.ReLU(True),
            nn.ConvTranspose2d(width * 2, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(len(z), self.width * 4, 4, 4))


class VAE(nn.Module):
    def __init__(self, nz: int = 150, width: int = 64):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, width * 2, 4, 2, 1), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width * 2, width * 4, 4, 2, 1), nn.BatchNorm2d(width * 4), nn.LeakyReLU(0.2, True),
            nn.Flatten(),
        )
        self.to_stats = nn.Linear(width * 4 * 4 * 4, 2 * nz)
        self.decoder = VAEDecoder(nz, width)

    def forward(self, x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        z = mu + torch.randn(mu.shape, generator=g) * (0.5 * logvar).exp()
        return self.decoder(z), mu, logvar


@dataclass
class VAEConfig:
    iterations: int
    batch_size: int = 64
    lr: float = 1e-3
    nz: int = 150
    width: int = 64
    beta: float = 1.0


class VAETrainer:
    """ELBO: summed squared reconstruction error per image + β KL(q(z|x) || N(0, I))."""

    def __init__(self, cfg: VAEConfig, source: ImageSource, g: torch.Generator):
        self.cfg, self.source, self.g = cfg, source, g
        self.vae = VAE(cfg.nz, cfg.width)
        self.opt = torch.optim.Adam(self.vae.parameters(), lr=cfg.lr)
        self.net_g = self.vae.decoder

    def z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.nz, generator=self.g)

    def step(self) -> dict[str, float]:
        x = self.source.batch(self.cfg.batch_size, self.g)
        recon, mu, logvar = self.vae(x, self.g)
        rec = F.mse_loss(recon, x, reduction="sum") / len(x)
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1).mean()
        loss = rec + self.cfg.beta * kl
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "recon": rec.item(), "kl": kl.item()}

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        self.vae.eval()
        images = (self.vae.decoder(z) + 1) / 2
        self.vae.train()
        return images

    def export(self) -> tuple[dict[str, torch.Tensor], dict]:
        return self.vae.decoder.state_dict(), {"model": "vae", "architecture": {"nz": self.cfg.nz, "width": self.cfg.width}}
