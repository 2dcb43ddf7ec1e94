"""Scenes from latent vectors (the procedural generator's map) and from uniform attribute draws
(training data)."""

from __future__ import annotations

import torch

from . import attributes as A
from .render import Scene

N_SHAPES, N_COLOURS = len(A.SHAPES), len(A.COLOURS)
# Latent coordinates used per object: shape logits, colour logits, size, x, y, rotation, jitter.
OBJECT_COORDS = N_SHAPES + N_COLOURS + 4 + 3
BACKGROUND_COORDS = N_COLOURS + 3
PROTOTYPES_HSV = torch.tensor([A.COLOUR_HSV[c] for c in A.COLOURS])
JITTER = torch.tensor(A.COLOUR_JITTER)


def coords_needed(max_objects: int) -> int:
    """Latent coordinates that the scene map reads for scenes of up to `max_objects` objects."""
    return BACKGROUND_COORDS + max_objects * OBJECT_COORDS + (max_objects - 1)


def jittered_hsv(colour: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """HSV of named colours moved inside their jitter box; `unit` in [-1, 1], shape (..., 3)."""
    hsv = PROTOTYPES_HSV.to(unit.device)[colour] + JITTER.to(unit.device) * unit
    return torch.stack([hsv[..., 0] % 1.0, hsv[..., 1].clamp(0, 1), hsv[..., 2].clamp(0, 1)], dim=-1)


def _offset_limit(size: torch.Tensor) -> torch.Tensor:
    return 1.0 - A.BORDER_MARGIN - size


def _argmax_excluding(logits: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
    masked = logits.masked_fill(torch.nn.functional.one_hot(excluded, logits.shape[-1]).bool(), -torch.inf)
    return masked.argmax(-1)


def scene_from_coords(u: torch.Tensor, max_objects: int = 1) -> Scene:
    """Map (B, coords_needed) standard-normal coordinates to scenes.

    Continuous attributes (colour jitter, size, position, rotation) follow the coordinates
    smoothly; shape and named colours are argmaxes over their slices, so the image changes
    abruptly only on the thin boundaries between them.
    """
    background_logits, u = u[:, :N_COLOURS], u[:, N_COLOURS:]
    background_jitter, u = u[:, :3], u[:, 3:]
    per_object = []
    for k in range(max_objects):
        block, u = u[:, :OBJECT_COORDS], u[:, OBJECT_COORDS:]
        present = torch.ones(len(block), dtype=torch.bool, device=u.device)
        if k > 0:
            present, u = u[:, 0] > 0.5, u[:, 1:]
        per_object.append((block, present))

    shapes, colours, hsvs, sizes, xs, ys, rotations, presents = ([] for _ in range(8))
    background = None
    for k, (block, present) in enumerate(per_object):
        shape_logits = block[:, :N_SHAPES]
        colour_logits = block[:, N_SHAPES : N_SHAPES + N_COLOURS]
        size_u, x_u, y_u, rot_u = block[:, N_SHAPES + N_COLOURS : N_SHAPES + N_COLOURS + 4].unbind(-1)
        jitter_u = block[:, -3:]
        if k == 0:
            colour = colour_logits.argmax(-1)
            background = _argmax_excluding(background_logits, colour)
        else:
            colour = _argmax_excluding(colour_logits, background)
        lo, hi = A.SIZE_RANGE
        # in float64: float32 sigmoid takes another code path for a tensor's last elements, so
        # a scene's size would depend on where in a batch it is (packs batch many runs)
        size = lo + (hi - lo) * torch.sigmoid(1.5 * size_u.double()).to(size_u.dtype)
        if k > 0:
            size = size * 0.7  # extra objects are smaller, so they rarely hide the main one
        limit = _offset_limit(size)
        shapes.append(shape_logits.argmax(-1))
        colours.append(colour)
        hsvs.append(jittered_hsv(colour, torch.tanh(jitter_u)))
        sizes.append(size)
        xs.append(limit * torch.tanh(x_u))
        ys.append(limit * torch.tanh(y_u))
        rotations.append(A.ROTATION_RANGE * torch.tanh(rot_u))
        presents.append(present)
    return Scene(
        shape=torch.stack(shapes, 1),
        colour=torch.stack(colours, 1),
        colour_hsv=torch.stack(hsvs, 1),
        size=torch.stack(sizes, 1),
        x=torch.stack(xs, 1),
        y=torch.stack(ys, 1),
        rotation=torch.stack(rotations, 1),
        present=torch.stack(presents, 1),
        background=background,
        background_hsv=jittered_hsv(background, torch.tanh(background_jitter)),
    )


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _position_of_class(position: torch.Tensor, size: torch.Tensor, g: torch.Generator):
    """Object centres drawn uniformly inside the region that each named position covers."""
    n = len(position)
    limit = _offset_limit(size)
    c = A.CENTRE_RADIUS
    centre_x, centre_y = _uniform(n, -c, c, g), _uniform(n, -c, c, g)
    # Off-centre: the named axis's offset is larger than the other axis's and than c.
    major = c + (limit - c) * torch.rand(n, generator=g)
    minor = (torch.rand(n, generator=g) * 2 - 1) * major
    sign = torch.where(torch.isin(position, torch.tensor([1, 3])), -1.0, 1.0)
    horizontal = torch.isin(position, torch.tensor([1, 2]))
    x = torch.where(horizontal, sign * major, minor)
    y = torch.where(horizontal, minor, sign * major)
    is_centre = position == 0
    return torch.where(is_centre, centre_x, x), torch.where(is_centre, centre_y, y)


def random_scenes(
    n: int,
    g: torch.Generator,
    balanced: bool = True,
) -> Scene:
    """Single-object scenes with every named attribute drawn uniformly (training data).

    With `balanced`, the batch cycles through every shape x colour pair so that each appears
    about equally often.
    """
    allowed = [(s, c) for s in range(N_SHAPES) for c in range(N_COLOURS)]
    pairs = torch.tensor(allowed)
    if balanced:
        reps = -(-n // len(allowed))
        idx = torch.cat([torch.randperm(len(allowed), generator=g) for _ in range(reps)])[:n]
    else:
        idx = torch.randint(len(allowed), (n,), generator=g)
    shape, colour = pairs[idx].unbind(-1)
    # Background: any colour but the object's, chosen uniformly among the remaining seven.
    offset = torch.randint(1, N_COLOURS, (n,), generator=g)
    background = (colour + offset) % N_COLOURS
    size_class = torch.randint(0, 2, (n,), generator=g)
    lo, hi = A.SIZE_RANGE
    size = torch.where(
        size_class == 1,
        _uniform(n, A.SIZE_THRESHOLD, hi, g),
        _uniform(n, lo, A.SIZE_THRESHOLD, g),
    )
    position = torch.randint(0, len(A.POSITIONS), (n,), generator=g)
    x, y = _position_of_class(position, size, g)
    return Scene(
        shape=shape[:, None],
        colour=colour[:, None],
        colour_hsv=jittered_hsv(colour, torch.rand(n, 3, generator=g) * 2 - 1)[:, None],
        size=size[:, None],
        x=x[:, None],
        y=y[:, None],
        rotation=_uniform(n, -A.ROTATION_RANGE, A.ROTATION_RANGE, g)[:, None],
        present=torch.ones(n, 1, dtype=torch.bool),
        background=background,
        background_hsv=jittered_hsv(background, torch.rand(n, 3, generator=g) * 2 - 1),
    )


#: a named scene's object where its size or position is not named: big, in the centre, upright
NAMED_SIZE = {"small": 0.27, "big": 0.42}
NAMED_OFFSET = {"centre": (0.0, 0.0), "left": (-0.45, 0.0), "right": (0.45, 0.0), "top": (0.0, -0.45),
                "bottom": (0.0, 0.45)}


def named_scene(attributes: dict[str, str]) -> Scene:
    """The one scene with these attribute values (shape, colour and background named; size and
    position optional), its colours the prototypes: an image prompt whose truth is known."""
    shape, colour, background = (A.ATTRIBUTE_VALUES[a].index(attributes[a]) for a in ("shape", "colour", "background"))
    x, y = NAMED_OFFSET[attributes.get("position", "centre")]

    def one(value, dtype=torch.float32) -> torch.Tensor:
        return torch.tensor([[value]], dtype=dtype)

    return Scene(shape=one(shape, torch.long), colour=one(colour, torch.long),
                 colour_hsv=PROTOTYPES_HSV[colour][None, None], size=one(NAMED_SIZE[attributes.get("size", "big")]),
                 x=one(x), y=one(y), rotation=one(0.0), present=one(True, torch.bool),
                 background=torch.tensor([background]), background_hsv=PROTOTYPES_HSV[background][None])
