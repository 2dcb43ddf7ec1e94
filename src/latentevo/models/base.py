"""The two interfaces the search pipeline sees: a generator and a scorer.

Every generator (shapes world, DCGAN, BigGAN, StyleGAN2) and every scorer (the shapes-world
mini-CLIP, OpenAI CLIP) implements one of these, so the pipeline never knows which it has.
Both are torch modules put in eval mode with frozen weights at construction; they build no
autograd graph unless their input asks for one (gradient search on a differentiable generator).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class Generator(nn.Module, ABC):
    """Maps a batch of latent vectors to a batch of RGB images in [0, 1]."""

    #: length of one latent vector
    latent_dim: int
    #: side of the (square) images it produces
    resolution: int
    #: search box: every coordinate of a latent is searched inside [-bound, bound]
    latent_bound: float = 3.0
    #: whether `synthesize` is differentiable in z, so that gradient search (algo=adam) can run on it
    differentiable: bool = False

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draws from the prior, N(0, I) truncated to the search box (resampled, not clipped)."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        outside = z.abs() > self.latent_bound
        while outside.any():
            z[outside] = torch.randn(int(outside.sum()), generator=generator)
            outside = z.abs() > self.latent_bound
        return z

    @property
    def device(self) -> torch.device:
        return next(self.buffers(), next(self.parameters(), torch.empty(0))).device

    @abstractmethod
    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) on this module's device to (B, 3, resolution, resolution) in [0, 1]."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # a graph only for latents that ask for their gradient (gradient search)
        with torch.set_grad_enabled(z.requires_grad and torch.is_grad_enabled()):
            return self.synthesize(z.to(self.device, torch.float32))


class Scorer(nn.Module, ABC):
    """Embeds texts and images in one space; cos_sim of a prompt and an image is the fitness."""

    #: longest prompt in tokens, start and end tokens included
    context_length: int
    #: views of each image whose cos_sims are averaged (see `draw_views`)
    views: int = 1

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the text takes, start and end tokens included (may exceed context_length)."""

    @abstractmethod
    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """(T, D) unit-norm text embeddings."""

    @abstractmethod
    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D) unit-norm embeddings of (B, 3, H, W) images in [0, 1] of any size."""

    def draw_views(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        """Random parameters of `views` views of each of `n` images, drawn from `rng` at once, so
        that a run's views do not depend on how its images are chunked or packed; None: one view,
        the image itself."""
        return None

    def apply_views(self, images: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        """(B, 3, H, W) -> (B * views, 3, H, W), the views of each image adjacent, for the
        `draw_views` parameters of these B images."""
        return images

    @torch.no_grad()
    def cos_sim(self, images: torch.Tensor, text_embedding: torch.Tensor) -> torch.Tensor:
        """(B,) cosine similarity of each image to one (D,) text embedding."""
        return self.embed_images(images.to(self.device)) @ text_embedding.to(self.device)


class TrainedGenerator(Generator):
    """A trained network (z -> (B, 3, 32, 32) in [-1, 1]: DCGAN, E-GAN, VAE decoder) behind the
    Generator interface: its latent space to search."""

    resolution = 32
    differentiable = True

    def __init__(self, net: nn.Module, latent_bound: float = 3.0):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.latent_dim, self.latent_bound = net.latent_dim, latent_bound

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        return (self.net(z) + 1) / 2
