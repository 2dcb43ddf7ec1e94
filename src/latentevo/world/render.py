"""Batched, antialiased rendering of shapes-world scenes with signed distance functions."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from . import attributes as A


@dataclass
class Scene:
    """A batch of B scenes with up to K objects each (object 0 is always present).

    Coordinates are in units of the image half-width: x to the right, y downwards, both in
    [-1, 1]; `size` is the object's radius in the same units.
    """

    shape: torch.Tensor  # (B, K) long, index into SHAPES
    colour: torch.Tensor  # (B, K) long, index into COLOURS
    colour_hsv: torch.Tensor  # (B, K, 3)
    size: torch.Tensor  # (B, K)
    x: torch.Tensor  # (B, K)
    y: torch.Tensor  # (B, K)
    rotation: torch.Tensor  # (B, K) radians
    present: torch.Tensor  # (B, K) bool
    background: torch.Tensor  # (B,) long, index into COLOURS
    background_hsv: torch.Tensor  # (B, 3)

    def __len__(self) -> int:
        return self.shape.shape[0]

    def index(self, idx) -> Scene:
        return Scene(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def to(self, device: torch.device | str) -> Scene:
        return Scene(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @property
    def size_name(self) -> torch.Tensor:
        """(B, K) index into SIZES."""
        return (self.size >= A.SIZE_THRESHOLD).long()

    @property
    def position_name(self) -> torch.Tensor:
        """(B, K) index into POSITIONS."""
        centre = (self.x.abs() < A.CENTRE_RADIUS) & (self.y.abs() < A.CENTRE_RADIUS)
        horizontal = self.x.abs() >= self.y.abs()
        side = torch.where(
            horizontal,
            torch.where(self.x < 0, 1, 2),
            torch.where(self.y < 0, 3, 4),
        )
        return torch.where(centre, 0, side)

    def labels(self) -> dict[str, torch.Tensor]:
        """Ground-truth value index of every attribute of the main object, each (B,)."""
        return {
            "shape": self.shape[:, 0],
            "colour": self.colour[:, 0],
            "size": self.size_name[:, 0],
            "position": self.position_name[:, 0],
            "background": self.background,
        }


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """(..., 3) HSV in [0, 1] to RGB in [0, 1]."""
    h, s, v = hsv.unbind(-1)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=-1)
    ramp = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return v.unsqueeze(-1) - (v * s).unsqueeze(-1) * ramp


def _box(px, py, hx, hy):
    qx, qy = px.abs() - hx, py.abs() - hy
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0)


def _triangle(px, py, r):
    # Equilateral triangle pointing up, circumradius r (image y points down).
    k = math.sqrt(3.0)
    half_side = r * k / 2
    px = px.abs() - half_side
    py = -py + half_side / k
    fold = px + k * py > 0
    px, py = (
        torch.where(fold, (px - k * py) / 2, px),
        torch.where(fold, (-k * px - py) / 2, py),
    )
    px = px - torch.clamp(px, -2 * half_side, torch.zeros_like(px))
    return -torch.sqrt(px**2 + py**2) * torch.sign(py)


def _star(px, py, r):
    # Five-pointed star, point up; a polar profile, scaled to approximate a distance.
    angle = torch.atan2(px, -py)
    sector = 2 * math.pi / 5
    t = ((angle % sector) / sector - 0.5).abs() * 2  # 1 at a point, 0 between points
    profile = r * (0.45 + 0.55 * t)
    return (torch.sqrt(px**2 + py**2) - profile) * 0.7


def shape_sdf(shape: torch.Tensor, px, py, r) -> torch.Tensor:
    """Signed distance to each object's outline; shape (B, K), px/py (B, K, H, W), r (B, K, 1, 1)."""
    dist = torch.sqrt(px**2 + py**2)
    candidates = torch.stack(
        [
            dist - r,  # circle
            _box(px, py, r * 0.82, r * 0.82),  # square
            _triangle(px, py, r * 1.1),  # triangle
            _star(px, py, r * 1.1),  # star
            (dist - r * 0.72).abs() - r * 0.28,  # ring
            torch.minimum(_box(px, py, r, r * 0.32), _box(px, py, r * 0.32, r)),  # cross
        ],
        dim=2,
    )
    return candidates.gather(2, shape[:, :, None, None, None].expand(-1, -1, 1, *px.shape[2:]))[:, :, 0]


def render(scene: Scene, resolution: int = 64) -> torch.Tensor:
    """Render a batch of scenes to (B, 3, resolution, resolution) RGB in [0, 1]."""
    device = scene.size.device
    coords = (torch.arange(resolution, device=device, dtype=torch.float32) + 0.5) / resolution * 2 - 1
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")
    dx = gx - scene.x[..., None, None]
    dy = gy - scene.y[..., None, None]
    cos, sin = torch.cos(scene.rotation)[..., None, None], torch.sin(scene.rotation)[..., None, None]
    px, py = cos * dx + sin * dy, -sin * dx + cos * dy
    sdf = shape_sdf(scene.shape, px, py, scene.size[..., None, None])
    # Coverage of each pixel by the shape: the signed distance over one pixel's width.
    pixel = 2.0 / resolution
    alpha = torch.clamp(0.5 - sdf / pixel, 0, 1) * scene.present[..., None, None]
    image = hsv_to_rgb(scene.background_hsv)[:, :, None, None].expand(-1, -1, resolution, resolution)
    rgb = hsv_to_rgb(scene.colour_hsv)
    for k in range(scene.shape.shape[1]):
        a = alpha[:, k : k + 1]
        image = image * (1 - a) + rgb[:, k, :, None, None] * a
    return image.clamp(0, 1)
