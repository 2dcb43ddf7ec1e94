"""The shapes world's independent classifier: a plain convolutional network (unlike the
mini-CLIP's ResNet/attention-pool tower) that names every attribute of an image."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..world import ATTRIBUTE_VALUES, ATTRIBUTES
from .weights import WORLD_DIR, load_state, load_world_model, reads_world_model

INPUT_SIZE = 64


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ShapesClassifier(nn.Module):
    """VGG-style network with one head per attribute; a 4x4 map keeps where things are."""

    def __init__(self, width: int = 24):
        super().__init__()
        self.body = nn.Sequential(
            _block(3, width), _block(width, 2 * width), _block(2 * width, 4 * width), _block(4 * width, 4 * width)
        )
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * 16, 256), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({a: nn.Linear(256, len(ATTRIBUTE_VALUES[a])) for a in ATTRIBUTES})

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 256) penultimate features of images in [0, 1] of any size."""
        if images.shape[-1] != INPUT_SIZE:
            images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
        return self.embed(self.body(images * 2 - 1))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per attribute."""
        h = self.features(images)
        return {a: head(h) for a, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Class probabilities per attribute."""
        return {a: logits.softmax(-1) for a, logits in self(images).items()}


@reads_world_model("classifier")
def shapes_classifier(random_init: bool = False, weights_dir: str | Path = WORLD_DIR) -> ShapesClassifier:
    if random_init:
        return ShapesClassifier().eval()
    state, config = load_world_model("classifier", Path(weights_dir))
    model = ShapesClassifier(**config["architecture"])
    load_state(model, state, Path(weights_dir) / "classifier.safetensors")
    return model.eval().requires_grad_(False)
