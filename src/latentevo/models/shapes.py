"""The procedural `shapes` generator: a known latent space over the shapes world."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..world import Scene, coords_needed, render, scene_from_coords
from .base import Generator


class ShapesGenerator(Generator):
    """z ~ N(0, I) -> scene attributes -> rendered image, with the ground truth of every z.

    The latent is mixed by a fixed random orthogonal matrix before it is read as scene
    coordinates, so attributes are spread over all latent directions as in a trained GAN
    (with `entangle=False` each attribute sits on its own coordinates).
    """

    def __init__(
        self,
        latent_dim: int = 32,
        resolution: int = 64,
        max_objects: int = 1,
        entangle: bool = True,
        mixing_seed: int = 0,
        latent_bound: float = 3.0,
    ):
        super().__init__()
        needed = coords_needed(max_objects)
        if latent_dim < needed:
            raise ConfigError(f"shapes generator needs latent_dim >= {needed} for max_objects={max_objects}, "
                              f"got {latent_dim}")
        if resolution < 8:
            raise ConfigError(f"shapes generator resolution must be >= 8, got {resolution}")
        self.latent_dim, self.resolution, self.max_objects = latent_dim, resolution, max_objects
        self.latent_bound = latent_bound
        if entangle:
            g = torch.Generator().manual_seed(mixing_seed)
            q, _ = torch.linalg.qr(torch.randn(latent_dim, latent_dim, generator=g))
            mixing = q[:, :needed]
        else:
            mixing = torch.eye(latent_dim)[:, :needed]
        # Orthonormal columns keep the scene coordinates standard normal when z is.
        self.register_buffer("mixing", mixing)

    def scenes(self, z: torch.Tensor) -> Scene:
        """Ground-truth scenes of a batch of latents."""
        return scene_from_coords(z.to(self.mixing.device, torch.float32) @ self.mixing, self.max_objects)

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        return render(self.scenes(z), self.resolution)
