"""Image grids, as runs, train.py and pixel_ga.py log them."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..models.base import Generator

# Grid tiles are upscaled (nearest) to at least this many pixels, so small images stay visible,
# and population grids of large images downscaled to at most MAX_TILE, so they stay small files.
MIN_TILE = 128
MAX_TILE = 256
#: most images in a population grid (the best ones): a large population stays a small file
MAX_GRID_IMAGES = 256
#: the grey between tiles (0.5 of full scale, rounded half to even as torch rounds it)
PAD_VALUE = 128


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) images in [0, 1] as (B, H, W, 3) uint8 (grey ones as RGB)."""
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return pixels.repeat(3, axis=3) if pixels.shape[3] == 1 else pixels


def image_grid(images: torch.Tensor, nrow: int = 8, max_tile: int | None = MAX_TILE) -> np.ndarray:
    """(H, W, 3) uint8 grid of (B, 3, H, W) images in [0, 1], row-major; tiles at most `max_tile` px
    (None: full size), small ones upscaled to MIN_TILE. Runs, train.py and pixel_ga.py log these.
    The tiles are made uint8 before the nearest upscale, which only repeats pixels: the same grid
    as upscaling in float first (torchvision's make_grid), for a fraction of the work."""
    images = images.float().cpu()
    if max_tile and images.shape[-1] > max_tile:
        images = F.interpolate(images, size=(max_tile, max_tile), mode="area")
    scale = max(1, MIN_TILE // images.shape[-1])
    tiles = to_uint8(images).repeat(scale, axis=1).repeat(scale, axis=2)
    if len(tiles) == 1:
        return tiles[0]
    n, height, width, _ = tiles.shape
    pad, cols = 2 * scale, min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.full((rows * (height + pad) + pad, cols * (width + pad) + pad, 3), PAD_VALUE, np.uint8)
    for k, tile in enumerate(tiles):
        top, left = (k // cols) * (height + pad) + pad, (k % cols) * (width + pad) + pad
        grid[top : top + height, left : left + width] = tile
    return grid


def latent_images(generator: Generator, latents: np.ndarray) -> torch.Tensor:
    return generator(torch.from_numpy(latents).float())


def grid_order(cos_sim: np.ndarray) -> np.ndarray:
    """The indices of a population grid's images: best first, at most MAX_GRID_IMAGES."""
    return np.argsort(-cos_sim, kind="stable")[:MAX_GRID_IMAGES]


def population_grid(generator: Generator, latents: np.ndarray, cos_sim: np.ndarray) -> np.ndarray:
    """The population best first, at most MAX_GRID_IMAGES of it."""
    return image_grid(latent_images(generator, latents[grid_order(cos_sim)]))
