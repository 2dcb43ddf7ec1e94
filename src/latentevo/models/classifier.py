"""Image classifiers: the shapes world's independent classifier (a plain convolutional network,
unlike the mini-CLIP's ResNet/attention-pool tower, that names every attribute of an image), and
the classifiers the evaluation asks, each mapping (B, 3, H, W) images in [0, 1] of any size to
class probabilities over its `labels`: one attribute head of the shapes classifier, ResNet-50
with ImageNet weights, and a CIFAR-10 CNN."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet50_Weights, resnet50

from ..errors import ConfigError
from ..identity import reads_weights
from ..world import ATTRIBUTE_VALUES, ATTRIBUTES
from .pretrained import load_checkpoint, load_into, locate, locate_or_download, weights_dir
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
            images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True,
                                   align_corners=False)
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


class Classifier(nn.Module, ABC):
    """Class probabilities over `labels`; eval mode, no gradients."""

    labels: tuple[str, ...]

    @abstractmethod
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """(B, len(labels)) probabilities of (B, 3, H, W) images in [0, 1]."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


# --- shapes world ------------------------------------------------------------------------------


@reads_world_model("classifier")
class ShapesAttributeClassifier(Classifier):
    """One attribute head (shape, colour, ...) of the shapes world's independent classifier."""

    def __init__(self, attribute: str, random_init: bool = False):
        super().__init__()
        if attribute not in ATTRIBUTES:
            raise ConfigError(f"shapes classifier attribute must be one of {', '.join(ATTRIBUTES)}, got {attribute!r}")
        self.attribute, self.labels = attribute, ATTRIBUTE_VALUES[attribute]
        self.model = shapes_classifier(random_init=random_init)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.to(self.device))[self.attribute].softmax(-1)


# --- ImageNet: torchvision ResNet-50 -----------------------------------------------------------

RESNET50 = ResNet50_Weights.IMAGENET1K_V1  # 76.1 % top-1, the accuracy the thesis quotes
RESNET50_FILE = "resnet50-imagenet1k-v1.pth"


def _download(url: str, path: Path) -> None:
    torch.hub.download_url_to_file(url, str(path), progress=False)


@reads_weights(lambda random_init, weights: [] if random_init else [weights_dir(weights) / RESNET50_FILE])
class ImageNetResNet50(Classifier):
    """torchvision's ResNet-50 (IMAGENET1K_V1) over the 1000 ImageNet classes, with its own
    preprocessing (resize 256, centre crop 224, ImageNet mean/std)."""

    def __init__(self, random_init: bool = False, weights: str | None = None):
        super().__init__()
        self.labels = tuple(RESNET50.meta["categories"])
        self.model = resnet50(weights=None)
        self.preprocess = RESNET50.transforms()
        if not random_init:
            how = f"download {RESNET50.url}"
            path = locate_or_download("ResNet-50 (ImageNet)", RESNET50_FILE, weights, how, RESNET50.url, _download)
            load_into(self.model, load_checkpoint(path, "ResNet-50 (ImageNet)"), "ResNet-50 (ImageNet)", path)
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.preprocess(images.to(self.device))).softmax(-1)


# --- CIFAR-10: a small VGG-style CNN -----------------------------------------------------------

CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_FILE = "cifar10-cnn.safetensors"
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR10_SIZE = 32


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Cifar10Net(nn.Module):
    """Three double-conv stages (64, 128, 256 channels) and a linear head, a CNN of the kind the
    thesis used (~85 % on CIFAR-10); `make cifar10-classifier` prints the test accuracy it reaches."""

    def __init__(self, width: int = 64, dropout: float = 0.3):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _conv(3, w), _conv(w, w), nn.MaxPool2d(2),
            _conv(w, 2 * w), _conv(2 * w, 2 * w), nn.MaxPool2d(2),
            _conv(2 * w, 4 * w), _conv(4 * w, 4 * w), nn.AdaptiveMaxPool2d(1),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w, len(CIFAR10_LABELS)))
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of (B, 3, 32, 32) images in [0, 1]."""
        return self.head(self.body((images - self.mean) / self.std))


def cifar10_how_to_get() -> str:
    return "run `make cifar10-classifier` (trains it on CIFAR-10) or save a Cifar10Net state dict as safetensors"


@reads_weights(lambda random_init, weights: [] if random_init else [weights_dir(weights) / CIFAR10_FILE])
class Cifar10CNN(Classifier):
    """Cifar10Net over the CIFAR-10 classes; images are resized to 32 px (antialiased)."""

    def __init__(self, random_init: bool = False, weights: str | None = None):
        super().__init__()
        self.labels = CIFAR10_LABELS
        self.model = Cifar10Net()
        if not random_init:
            path = locate("CIFAR-10 CNN", CIFAR10_FILE, weights, cifar10_how_to_get())
            load_into(self.model, load_checkpoint(path, "CIFAR-10 CNN"), "CIFAR-10 CNN", path)
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device)
        if images.shape[-1] != CIFAR10_SIZE:
            images = F.interpolate(images, size=(CIFAR10_SIZE, CIFAR10_SIZE), mode="bilinear", antialias=True,
                                   align_corners=False)
        return self.model(images).softmax(-1)
