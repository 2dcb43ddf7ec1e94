"""Pictures of the shapes world for the docs: renders with captions, generator and DCGAN samples,
the DCGAN asked for each shape.

    python -m latentevo.training.gallery [--out docs]
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from ..cli import ArgumentParser, exit_on_error  # noqa: E402
from ..models.dcgan import dcgan_shapes  # noqa: E402
from ..models.shapes import ShapesGenerator  # noqa: E402
from ..world import ATTRIBUTE_VALUES, ATTRIBUTES, caption_text, random_scenes, render  # noqa: E402
from ..world.captions import sample_content  # noqa: E402
from .data import RESOLUTION, shapes_batch  # noqa: E402


def captioned_renders(path: Path, rows: int = 4, cols: int = 6, seed: int = 0) -> None:
    g, rng = torch.Generator().manual_seed(seed), random.Random(seed)
    scenes = random_scenes(rows * cols, g)
    images = render(scenes, 64)
    labels = scenes.labels()
    content = sample_content(torch.stack([labels[a] for a in ATTRIBUTES], 1), g)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.9, rows * 2.3))
    for ax, img, row in zip(axes.flat, images, content):
        ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title("\n".join(textwrap.wrap(caption_text(row, rng), 22)), fontsize=7.5)
        ax.axis("off")
    fig.suptitle("Shapes-world renders (64 px) with sampled training captions", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _grid_axis(ax, images: torch.Tensor, title: str) -> None:
    ax.imshow(make_grid(images, nrow=8, padding=1, pad_value=1.0).permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.axis("off")


def generator_samples(path: Path, seed: int = 0) -> None:
    """Prior samples of the procedural generator, real 32-px renders, and DCGAN samples."""
    g = torch.Generator().manual_seed(seed)
    shapes = ShapesGenerator()
    dcgan = dcgan_shapes()
    panels = [
        (shapes(shapes.sample_latents(64, g)), "`shapes` generator, z ~ N(0, I)"),
        ((shapes_batch(64, g) + 1) / 2, f"real renders, {RESOLUTION} px"),
        (dcgan(dcgan.sample_latents(64, g)), "`dcgan_shapes`, z ~ N(0, I)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    for ax, (images, title) in zip(axes, panels):
        _grid_axis(ax, images, title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def dcgan_by_shape(path: Path, cols: int = 8, seed: int = 0) -> None:
    """The class-conditional DCGAN asked for each shape (rows), the rest of z shared by column."""
    dcgan = dcgan_shapes()
    z = dcgan.sample_latents(cols, torch.Generator().manual_seed(seed))
    shapes = ATTRIBUTE_VALUES["shape"]
    images = torch.cat([dcgan(dcgan.net.asking(z, "shape", i)) for i in range(len(shapes))])
    fig, ax = plt.subplots(figsize=(cols * 0.75 + 1, len(shapes) * 0.75 + 0.6))
    _grid_axis(ax, images, "`dcgan_shapes` asked for each shape (rows); z otherwise shared by column")
    ax.axis("on")
    ax.set_xticks([])
    step = images.shape[-1] + 1
    ax.set_yticks([step * (i + 0.5) for i in range(len(shapes))], shapes)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m latentevo.training.gallery", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    captioned_renders(args.out / "world_renders.png")
    generator_samples(args.out / "world_generators.png")
    dcgan_by_shape(args.out / "world_dcgan_shapes.png")
    print(f"wrote world_renders.png, world_generators.png and world_dcgan_shapes.png into {args.out}")


if __name__ == "__main__":
    exit_on_error(main)
