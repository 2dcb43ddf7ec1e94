"""Training data: freshly rendered shapes-world batches (at 64 px with the augmentations every
world model is trained under; at 32 px in [-1, 1] for the generative models), or a real data set
loaded from a local folder (downloaded by torchvision when the network is there)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import LatentevoError
from ..models.pretrained import can_download
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


# --- generative models: 32 px in [-1, 1] ------------------------------------------------------

RESOLUTION = 32


class DatasetError(LatentevoError):
    """A data set that is not on disk and cannot be downloaded, or cannot be read."""


class ImageSource(ABC):
    """Batches of (B, 3, 32, 32) images in [-1, 1]."""

    name: str
    #: whether `labelled_batch` gives each image's attributes (the shapes world's ground truth)
    labelled: bool = False

    @abstractmethod
    def batch(self, n: int, g: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
        """n images drawn with the random generator g, on `device`."""

    def labelled_batch(self, n: int, g: torch.Generator, device: torch.device | str = "cpu"):
        """n images and the value index of each attribute of each (sources with `labelled`)."""
        raise NotImplementedError(f"data set {self.name} has no attribute labels")


def labelled_shapes_batch(
    n: int, g: torch.Generator, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """n fresh renders in [-1, 1], every shape x colour pair included: the world a GAN models,
    with the value index of each attribute of each render. Scenes are drawn on the CPU from g,
    so a batch does not depend on the device."""
    scenes = random_scenes(n, g).to(device)
    return render(scenes, RESOLUTION) * 2 - 1, scenes.labels()


def shapes_batch(n: int, g: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """n fresh renders in [-1, 1], as `labelled_shapes_batch` draws them."""
    return labelled_shapes_batch(n, g, device)[0]


class ShapesSource(ImageSource):
    """Every batch is new renders: an unlimited data set whose distribution is known."""

    name, labelled = "shapes", True

    def batch(self, n: int, g: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
        return shapes_batch(n, g, device)

    def labelled_batch(self, n: int, g: torch.Generator, device: torch.device | str = "cpu"):
        return labelled_shapes_batch(n, g, device)


class TensorSource(ImageSource):
    """A data set held in memory, sampled with replacement."""

    def __init__(self, name: str, images: torch.Tensor):
        self.name, self.images = name, images

    def batch(self, n: int, g: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
        return self.images[torch.randint(len(self.images), (n,), generator=g)].to(device)


def to_training_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] (B, 3, H, W) -> centre-cropped, resized 32 px in [-1, 1]."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    side = min(x.shape[-2:])
    top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
    x = x[..., top : top + side, left : left + side]
    x = F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1) * 2 - 1


def offline_error(name: str, root: Path, url: str | None, how: str) -> DatasetError:
    why = f" and {url.split('/')[2]} cannot be reached to download it" if url else ""
    return DatasetError(f"data set {name} not found under {root}{why}; {how}, or set dataset.root=<dir>")


def _stack(dataset, max_images: int) -> torch.Tensor:
    import torchvision.transforms.functional as TF

    n = min(max_images, len(dataset))
    return to_training_range(torch.stack([TF.pil_to_tensor(dataset[i][0].convert("RGB")) for i in range(n)]))


def cifar10(root: Path, max_images: int) -> torch.Tensor:
    from torchvision.datasets import CIFAR10

    url = CIFAR10.url
    present = (root / CIFAR10.base_folder).is_dir()
    if not present and not can_download(url):
        raise offline_error("cifar10", root, url, f"download {url} and unpack it there")
    data = CIFAR10(str(root), train=True, download=not present)
    n = min(max_images, len(data.data))
    return to_training_range(torch.from_numpy(data.data[:n]).permute(0, 3, 1, 2))


def celeba(root: Path, max_images: int) -> torch.Tensor:
    from torchvision.datasets import CelebA

    url = "https://drive.google.com/"
    present = (root / CelebA.base_folder / "img_align_celeba").is_dir()
    if not present and not can_download(url):
        raise offline_error("celeba", root, url, "put the aligned CelebA images and list files in <root>/celeba/")
    return _stack(CelebA(str(root), split="train", target_type=[], download=not present), max_images)


def utkface(root: Path, max_images: int) -> torch.Tensor:
    """UTKFace has no torchvision loader or stable download: the aligned, cropped JPEGs
    (`UTKFace/*.jpg`) are read from disk."""
    import torchvision.transforms.functional as TF
    from PIL import Image

    files = sorted((root / "UTKFace").glob("*.jpg"))[:max_images]
    if not files:
        raise offline_error("utkface", root, None,
                            "download the aligned & cropped UTKFace images and unpack them to <root>/UTKFace/")
    return to_training_range(
        torch.stack([TF.pil_to_tensor(Image.open(f).convert("RGB").resize((64, 64))) for f in files])
    )


LOADERS = {"cifar10": cifar10, "celeba": celeba, "utkface": utkface}


def image_source(name: str, root: str | None = None, max_images: int = 50000) -> ImageSource:
    if name == "shapes":
        return ShapesSource()
    if name not in LOADERS:
        raise DatasetError(f"unknown data set {name!r}; choose shapes, {', '.join(LOADERS)}")
    folder = Path(root or "~/.cache/latentevo/data").expanduser()
    try:
        return TensorSource(name, LOADERS[name](folder, max_images))
    except (OSError, RuntimeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DatasetError(f"cannot read data set {name} under {folder}: {first}") from err
