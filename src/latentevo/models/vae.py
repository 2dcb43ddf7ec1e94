"""A convolutional VAE as FaceGen builds it (appendix B.1), at 32 px: encoder blocks of 4x4
stride-2 convolution + batch norm + LeakyReLU, then dense layers to μ and log σ²; decoder a
dense layer, reshape, and 4x4 stride-2 transposed convolutions + batch norm + ReLU, tanh out."""

from __future__ import annotations

import torch
from torch import nn


class VAEDecoder(nn.Module):
    """z (B, nz) -> (B, 3, 32, 32) in [-1, 1]."""

    def __init__(self, nz: int = 150, width: int = 64):
        super().__init__()
        self.nz, self.width, self.latent_dim = nz, width, nz
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
