"""Freshly rendered training batches of the shapes world, with the augmentations every world
model is trained under."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..world import ATTRIBUTES, COLOURS, SHAPES, random_scenes, render

# (shape, colour) combinations that no mini-CLIP training caption names together: their images
# are rendered and described by shape or by colour, never by both, so that prompts naming them
# test whether the text tower composes words it has only seen apart.
HELD_OUT_PAIRS: frozenset[tuple[int, int]] = frozenset(
    (SHAPES.index(s), COLOURS.index(c))
    for s, c in [
        ("circle", "purple"),
        ("square", "orange"),
        ("triangle", "white"),
        ("star", "green"),
        ("ring", "yellow"),
        ("cross", "blue"),
    ]
)


@dataclass
class Batch:
    images: torch.Tensor  # (B, 3, H, W) in [0, 1]
    labels: torch.Tensor  # (B, len(ATTRIBUTES)) value indices


def degrade(images: torch.Tensor, g: torch.Generator, fraction: float = 0.3) -> torch.Tensor:
    """Blur a fraction of the images by a down/up-sampling round trip and add noise to another,
    so the models also read the softer, noisier images a learned generator makes."""
    n, _, h, w = images.shape
    out = images.clone()
    blur = torch.rand(n, generator=g) < fraction
    if blur.any():
        small = F.interpolate(images[blur], scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)
        out[blur] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    noisy = torch.rand(n, generator=g) < fraction
    if noisy.any():
        sigma = 0.05 * torch.rand(int(noisy.sum()), 1, 1, 1, generator=g)
        out[noisy] = out[noisy] + sigma * torch.randn(out[noisy].shape, generator=g)
    return out.clamp(0, 1)


def scene_batch(
    n: int,
    g: torch.Generator,
    resolution: int = 64,
    augment: bool = True,
) -> Batch:
    scenes = random_scenes(n, g)
    images = render(scenes, resolution)
    if augment:
        images = degrade(images, g)
    labels = scenes.labels()
    return Batch(images, torch.stack([labels[a] for a in ATTRIBUTES], 1))
