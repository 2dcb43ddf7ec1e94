"""DCGAN (Radford et al.) sized for the shapes world: a learned latent space to search."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..world import ATTRIBUTE_VALUES, ATTRIBUTES
from .base import TrainedGenerator
from .realness import Realness
from .weights import WORLD_DIR, load_state, load_world_model, reads_world_model

# The attributes a shapes-world DCGAN can be conditioned on: every one a caption can name.
WORLD_CLASSES = {name: len(ATTRIBUTE_VALUES[name]) for name in ATTRIBUTES}


class DCGANNetG(nn.Module):
    """z (B, latent_dim) -> (B, 3, 32, 32) in [-1, 1]: batch-normed upsampling stages from 4x4.

    `upsample="transposed"` is Radford et al.'s strided transposed convolution; `"resize"`
    doubles by nearest-neighbour resizing and then applies a 3x3 convolution, which avoids the
    checkerboard texture that overlapping transposed kernels leave on flat colour fields.

    With `classes` (attribute -> number of values, in order) the generator is class-conditional, as
    BigGAN is: after the nz noise coordinates, z holds one logit per value of each attribute,
    and a softmax at `temperature` turns each attribute's logits into an almost one-hot code.
    The whole of z stays N(0, I), so a search moves through classes as it moves through noise."""

    def __init__(
        self,
        nz: int = 100,
        ngf: int = 64,
        upsample: str = "transposed",
        classes: dict[str, int] | list[tuple[str, int]] | None = None,
        temperature: float = 0.1,
    ):
        super().__init__()
        if upsample not in ("transposed", "resize"):
            raise ValueError(f"unknown upsample {upsample!r}: transposed or resize")
        self.nz, self.classes, self.temperature = nz, dict(classes or {}), temperature
        self.latent_dim = nz + sum(self.classes.values())

        def up(c_in: int, c_out: int) -> list[nn.Module]:
            if upsample == "transposed":
                return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
            return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)]

        self.net = nn.Sequential(
            nn.ConvTranspose2d(self.latent_dim, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            *up(ngf * 4, ngf * 2),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            *up(ngf * 2, ngf),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            *up(ngf, 3),
            nn.Tanh(),
        )

    def _class_logits(self, z: torch.Tensor) -> list[torch.Tensor]:
        return list(z[:, self.nz :].split(list(self.classes.values()), dim=1))

    def class_labels(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """The value of each attribute that z asks for: the index of its largest logit."""
        return {name: logits.argmax(1) for name, logits in zip(self.classes, self._class_logits(z))}

    def asking(self, z: torch.Tensor, name: str, value: int, logit: float = 3.0) -> torch.Tensor:
        """z with attribute `name`'s logits set to ask for its `value`-th value, all else kept."""
        names = list(self.classes)
        start = self.nz + sum(self.classes[other] for other in names[: names.index(name)])
        z = z.clone()
        z[:, start : start + self.classes[name]] = 0.0
        z[:, start + value] = logit
        return z

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.classes:
            codes = [F.softmax(logits / self.temperature, dim=1) for logits in self._class_logits(z)]
            z = torch.cat([z[:, : self.nz], *codes], dim=1)
        return self.net(z[:, :, None, None])


class DCGANNetD(nn.Module):
    """(B, 3, 32, 32) in [-1, 1] -> (B,) real/fake logit.

    With `classes` it is a projection discriminator (Miyato & Koyama): the logit gains the inner
    product of the pooled last features with an embedding of each attribute's value, so it
    judges an image against the classes it is said to show."""

    def __init__(self, ndf: int = 64, classes: dict[str, int] | None = None):
        super().__init__()
        self.embed = nn.ModuleDict({name: nn.Embedding(n, ndf * 4) for name, n in (classes or {}).items()})
        self.net = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
        )

    def forward(self, x: torch.Tensor, labels: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        features = self.net[:-1](x)
        logit = self.net[-1](features).flatten()
        if self.embed:
            projection = sum(self.embed[name](labels[name]) for name in self.embed)
            logit = logit + (projection * features.sum((2, 3))).sum(1)
        return logit


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions and class embeddings, N(1, 0.02) batch-norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@reads_world_model("dcgan")
def dcgan_shapes(
    random_init: bool = False, weights_dir: str | Path = WORLD_DIR, latent_bound: float = 3.0
) -> TrainedGenerator:
    """The DCGAN trained on shapes-world renders (or the same network randomly initialised)."""
    if random_init:
        net = DCGANNetG(upsample="resize", classes=WORLD_CLASSES)
        net.apply(init_weights)
        return TrainedGenerator(net, latent_bound)
    state, config = load_world_model("dcgan", Path(weights_dir))
    net = DCGANNetG(**config["architecture"])
    load_state(net, state, Path(weights_dir) / "dcgan.safetensors")
    return TrainedGenerator(net, latent_bound)


@reads_world_model("critic")
def dcgan_shapes_critic(random_init: bool = False, weights_dir: str | Path = WORLD_DIR) -> Realness:
    """The shapes-world DCGAN's realness critic: not the GAN's own discriminator (not kept) but the
    same architecture fitted afterwards to the committed generator (`train.py world=critic`,
    docs/world.md); or that network randomly initialised."""
    if random_init:
        net = DCGANNetD(32)
        net.apply(init_weights)
        return Realness(net, 32)
    state, config = load_world_model("critic", Path(weights_dir))
    net = DCGANNetD(**config["architecture"])
    load_state(net, state, Path(weights_dir) / "critic.safetensors")
    return Realness(net, 32)
