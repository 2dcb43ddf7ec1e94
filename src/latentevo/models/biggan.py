"""BigGAN-deep (Brock et al. 2019) through pytorch-pretrained-biggan, searchable in z and class.

The library builds the architecture from a config it downloads; the three published configs
are defined here instead, so that a model can be built (and randomly initialised) offline. Its
weights (`biggan-deep-<size>-pytorch_model.bin`, a plain state dict) are looked for in the
weights directory and, when absent and the network allows, fetched there with the library's own
download; they load with weights_only=True (the library's loader would unpickle anything).

The latent is z (128) and, unless the class is fixed, 1000 class genes:
- z is searched in [-bound, bound] (bound 2: BigGAN's truncated normal) and scaled by
  `truncation`, which also selects the batch-norm statistics, as the library's
  truncated_noise_sample does;
- class genes: the class vector is their softmax, as CLIP-GLaSS (which the thesis ran) did;
  `class_name` (an ImageNet class name or index) fixes a one-hot class instead, searching z only.
"""

from __future__ import annotations

from pathlib import Path

import torch
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
from pytorch_pretrained_biggan import BigGAN, BigGANConfig
from pytorch_pretrained_biggan.file_utils import http_get
from pytorch_pretrained_biggan.model import PRETRAINED_MODEL_ARCHIVE_MAP
from torch.nn.utils.spectral_norm import SpectralNorm

from ..errors import ConfigError
from ..identity import reads_weights
from .base import Generator
from .precision import autocast, check_precision, memory_format
from .pretrained import load_checkpoint, load_into, locate_or_download, weights_dir

Z_DIM = 128
NUM_CLASSES = 1000
# Blocks as (upsamples, in, out channels in units of channel_width=128): two per resolution,
# non-local attention at 64x64 (before block 8), from the published biggan-deep-<size>-config.json.
_TO_32 = [(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8)]
LAYERS = {
    128: _TO_32 + [(False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1)],
    256: _TO_32 + [(False, 8, 8), (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2),
                   (False, 2, 2), (True, 2, 1)],
}
LAYERS[512] = LAYERS[256] + [(False, 1, 1), (True, 1, 1)]
HOW_TO_GET = "download {url}"
# Power iterations that bring a fresh spectral-norm estimate close to the largest singular value.
POWER_ITERATIONS = 30


def biggan_config(size: int) -> BigGANConfig:
    """The published BigGAN-deep config at `size` px (128, 256 or 512)."""
    if size not in LAYERS:
        raise ConfigError(f"BigGAN-deep size must be one of {', '.join(map(str, LAYERS))}, got {size}")
    return BigGANConfig(output_dim=size, z_dim=Z_DIM, class_embed_dim=128, channel_width=128, num_classes=NUM_CLASSES,
                        layers=[list(layer) for layer in LAYERS[size]], attention_layer_position=8, eps=1e-4,
                        n_stats=51)


def class_index(class_name: str | int) -> int:
    """ImageNet class index of a name (as open_clip's ImageNet class list spells it) or an index."""
    if isinstance(class_name, int) and not isinstance(class_name, bool):
        if not 0 <= class_name < NUM_CLASSES:
            raise ConfigError(f"ImageNet class index must be in [0, {NUM_CLASSES}), got {class_name}")
        return class_name
    names = [name.lower() for name in IMAGENET_CLASSNAMES]
    wanted = str(class_name).strip().lower()
    if wanted not in names:
        close = [name for name in IMAGENET_CLASSNAMES if wanted and wanted in name.lower()][:5]
        hint = f"; did you mean {', '.join(close)}?" if close else "; give an ImageNet class name or index 0-999"
        raise ConfigError(f"unknown ImageNet class {class_name!r}{hint}")
    return names.index(wanted)


@torch.no_grad()
def initialise_randomly(model: BigGAN) -> None:
    """Makes a fresh BigGAN usable without weights. The library leaves the last batch norm's
    scale and shift uninitialised (arbitrary memory, often NaN), and in eval mode spectral norm
    divides by an estimate from random vectors that is far too small, so activations overflow
    within three blocks; converged power iterations fix the estimate."""
    torch.nn.init.ones_(model.generator.bn.weight)
    torch.nn.init.zeros_(model.generator.bn.bias)
    for module in model.modules():
        # spectral_norm registers its power iteration as a forward pre-hook of the module
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm):
                for _ in range(POWER_ITERATIONS):
                    hook.compute_weight(module, do_power_iteration=True)


def _download(url: str, path: Path) -> None:
    with open(path, "wb") as f:
        http_get(url, f)


def weights_file(size: int) -> str:
    return f"biggan-deep-{size}-pytorch_model.bin"


def weights_path(size: int, weights: str | Path | None) -> Path:
    """The BigGAN-deep-<size> weights file, downloaded into the weights directory if need be."""
    url = PRETRAINED_MODEL_ARCHIVE_MAP[f"biggan-deep-{size}"]
    return locate_or_download(f"BigGAN-deep-{size}", weights_file(size), weights, HOW_TO_GET.format(url=url), url,
                              _download)


def weight_files(size: int, random_init: bool, weights: str | None, **_) -> list[Path]:
    return [] if random_init else [weights_dir(weights) / weights_file(size)]


@reads_weights(weight_files)
class BigGANDeepGenerator(Generator):
    """BigGAN-deep 128/256/512 as a search space (see the module docstring)."""

    differentiable = True

    def __init__(self, size: int = 256, truncation: float = 1.0, class_name: str | int | None = None,
                 latent_bound: float = 2.0, random_init: bool = False, weights: str | None = None,
                 precision: str = "fp32", channels_last: bool = False):
        super().__init__()
        if not 0 < truncation <= 1:
            raise ConfigError(f"BigGAN truncation must be in (0, 1], got {truncation}")
        config = biggan_config(size)
        self.truncation = float(truncation)
        self.precision, self.layout = check_precision(precision), memory_format(channels_last)
        path = None if random_init else weights_path(size, weights)  # a missing file stops before the build
        self.model = BigGAN(config)
        if path is None:
            initialise_randomly(self.model)
        else:
            label = f"BigGAN-deep-{size}"
            load_into(self.model, load_checkpoint(path, label), label, path)
        self.model.requires_grad_(False).eval().to(memory_format=self.layout)
        fixed = class_name is not None
        self.class_index = class_index(class_name) if fixed else None
        self.latent_dim = Z_DIM if fixed else Z_DIM + NUM_CLASSES
        self.resolution, self.latent_bound = size, float(latent_bound)
        one_hot = torch.zeros(NUM_CLASSES)
        if fixed:
            one_hot[self.class_index] = 1.0
        self.register_buffer("fixed_class", one_hot, persistent=False)

    def class_vector(self, latents: torch.Tensor) -> torch.Tensor:
        if self.class_index is not None:
            return self.fixed_class.expand(len(latents), -1)
        return torch.softmax(latents[:, Z_DIM:], dim=1)

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        noise = z[:, :Z_DIM] * self.truncation
        with autocast(self.device, self.precision):
            image = self.model(noise, self.class_vector(z), self.truncation)
        return ((image.float() + 1) / 2).clamp(0, 1).contiguous()
