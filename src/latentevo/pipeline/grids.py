"""Image grids, as runs, train.py and pixel_ga.py log them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from ..models.base import Generator

# Grid tiles are upscaled (nearest) to at least this many pixels, so small images stay visible,
# and population grids of large images downscaled to at most MAX_TILE, so they stay small files.
MIN_TILE = 128
MAX_TILE = 256
#: most images in a population grid (the best ones): a large population stays a small file
MAX_GRID_IMAGES = 256


def image_grid(images: torch.Tensor, nrow: int = 8, max_tile: int | None = MAX_TILE) -> np.ndarray:
    """(H, W, 3) uint8 grid of (B, 3, H, W) images in [0, 1], row-major; tiles at most `max_tile` px
    (None: full size), small ones upscaled to MIN_TILE. Runs, train.py and pixel_ga.py log these."""
    images = images.float().cpu()
    if max_tile and images.shape[-1] > max_tile:
        images = F.interpolate(images, size=(max_tile, max_tile), mode="area")
    scale = max(1, MIN_TILE // images.shape[-1])
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    grid = torchvision.utils.make_grid(images, nrow=min(nrow, len(images)), padding=2 * scale, pad_value=0.5)
    return (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def latent_images(generator: Generator, latents: np.ndarray) -> torch.Tensor:
    return generator(torch.from_numpy(latents).float())


def population_grid(generator: Generator, latents: np.ndarray, cos_sim: np.ndarray) -> np.ndarray:
    """The population best first, at most MAX_GRID_IMAGES of it."""
    order = np.argsort(-cos_sim, kind="stable")[:MAX_GRID_IMAGES]
    return image_grid(latent_images(generator, latents[order]))
