"""A scorer that averages cos_sim over random crops and shifts of each image.

A single view of an image is easy to fool: evolution finds pixel patterns that one CLIP view
rates highly. Requiring the prompt to hold across views rewards images that depict it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Scorer


class AugmentedViews(Scorer):
    """Wraps a scorer; cos_sim is the mean over `views` random views of each image, each a crop
    of side `min_scale`..1 of the image, shifted by up to `max_shift` of the image width and
    resized back to full size. The views are drawn from their own seeded generator."""

    def __init__(self, scorer: Scorer, views: int = 8, min_scale: float = 0.8, max_shift: float = 0.1, seed: int = 0):
        super().__init__()
        if isinstance(views, bool) or not isinstance(views, int) or views < 1:
            raise ConfigError(f"augment.views must be an integer >= 1, got {views!r}")
        if not 0 < min_scale <= 1:
            raise ConfigError(f"augment.min_scale must be in (0, 1], got {min_scale!r}")
        if not 0 <= max_shift <= 1:
            raise ConfigError(f"augment.max_shift must be in [0, 1], got {max_shift!r}")
        self.scorer, self.views = scorer, views
        self.min_scale, self.max_shift = min_scale, max_shift
        self.context_length = scorer.context_length
        self.rng = torch.Generator().manual_seed(seed)

    def count_tokens(self, text: str) -> int:
        return self.scorer.count_tokens(text)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return self.scorer.embed_text(texts)

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.scorer.embed_images(images)

    def draw_views(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """(n * views, 2, 3) affine crops and shifts, from `rng` (default: this scorer's own)."""
        rng = self.rng if rng is None else rng
        m = n * self.views
        scale = self.min_scale + (1 - self.min_scale) * torch.rand(m, generator=rng)
        # affine_grid works in [-1, 1] coordinates: a crop of side s can move by 1 - s and
        # stay inside the image; the shift moves it further, the border colour filling in.
        reach = (1 - scale + 2 * self.max_shift)[:, None]
        offset = reach * (2 * torch.rand(m, 2, generator=rng) - 1)
        theta = torch.zeros(m, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = scale
        theta[:, :, 2] = offset
        return theta

    def apply_views(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        theta = params.to(images.device, images.dtype)
        grid = F.affine_grid(theta, [len(theta), *images.shape[1:]], align_corners=False)
        batch = images.repeat_interleave(self.views, dim=0)
        return F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def random_views(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B * views, 3, H, W), the views of each image adjacent."""
        return self.apply_views(images, self.draw_views(len(images)))

    @torch.no_grad()
    def cos_sim(self, images: torch.Tensor, text_embedding: torch.Tensor) -> torch.Tensor:
        sims = self.scorer.cos_sim(self.random_views(images.to(self.device)), text_embedding)
        return sims.view(len(images), self.views).mean(1)
