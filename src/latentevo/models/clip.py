"""CLIP scorers built with open_clip: the shapes-world mini-CLIP and any open_clip model."""

from __future__ import annotations

import functools
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Scorer
from .weights import WORLD_DIR, load_state, load_world_model, reads_world_model

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# The project's own architectures, registered with open_clip's model registry at import.
open_clip.add_model_config(CONFIG_DIR)

WORLD_CLIP = "shapes-clip-rn"


def build_open_clip(model_name: str) -> torch.nn.Module:
    """A randomly initialised open_clip model of a registered architecture."""
    if model_name not in open_clip.list_models():
        raise ConfigError(f"unknown open_clip model '{model_name}'; "
                          f"known: {', '.join(open_clip.list_models()[:8])}, ...")
    return open_clip.create_model(model_name, pretrained=None)


@functools.cache
def tokenizer_of(model_name: str):
    """open_clip's tokenizer of an architecture, built once a process: building its BPE
    vocabulary takes a tenth of a second, and it holds nothing of the texts it encoded but a memo."""
    return open_clip.get_tokenizer(model_name)


class OpenClipScorer(Scorer):
    """Wraps an open_clip model; preprocessing (resize, normalise) runs on tensors, batched."""

    def __init__(self, model: torch.nn.Module, model_name: str):
        super().__init__()
        self.model = model.eval()
        self.model_name = model_name
        self.tokenizer = tokenizer_of(model_name)
        self.context_length = self.tokenizer.context_length
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg["size"]
        self.image_size = size if isinstance(size, int) else size[0]
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, 3, 1, 1), persistent=False)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text)) + 2

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = F.interpolate(
                images, size=(self.image_size, self.image_size), mode="bicubic", antialias=True, align_corners=False
            ).clamp(0, 1)
        return (images - self.mean) / self.std

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        # a graph only for images that ask for their gradient (gradient search)
        with torch.set_grad_enabled(images.requires_grad and torch.is_grad_enabled()):
            features = self.model.encode_image(self.preprocess(images.to(self.device, torch.float32)))
            return F.normalize(features.float(), dim=-1)


@reads_world_model("clip")
def shapes_clip(random_init: bool = False, weights_dir: str | Path = WORLD_DIR) -> OpenClipScorer:
    """The shapes-world mini-CLIP, from the committed weights (or randomly initialised)."""
    model = build_open_clip(WORLD_CLIP)
    if not random_init:
        state, _ = load_world_model("clip", Path(weights_dir))
        load_state(model, state, Path(weights_dir) / "clip.safetensors")
    return OpenClipScorer(model.requires_grad_(False), WORLD_CLIP)
