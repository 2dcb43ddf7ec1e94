"""Training FaceGen's convolutional VAE (`models.vae`): the ELBO on fresh batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.vae import VAE
from .data import ImageSource
from .recipe import Steps
from .state import StateDicts


@dataclass
class VAEConfig(Steps):
    nz: int = 150
    width: int = 64
    beta: float = 1.0


class VAETrainer(StateDicts):
    """ELBO: summed squared reconstruction error per image + β KL(q(z|x) || N(0, I))."""

    STATE_DICTS = ("vae", "opt")

    def __init__(self, cfg: VAEConfig, source: ImageSource, g: torch.Generator):
        self.cfg, self.source, self.g = cfg, source, g
        self.vae = VAE(cfg.nz, cfg.width)
        self.opt = torch.optim.Adam(self.vae.parameters(), lr=cfg.lr)
        self.latent_dim = cfg.nz

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

    def class_labels(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def network(self) -> torch.nn.Module:
        return self.vae.decoder.eval()

    def architecture(self) -> dict:
        return {"nz": self.cfg.nz, "width": self.cfg.width}

