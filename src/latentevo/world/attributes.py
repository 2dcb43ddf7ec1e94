"""The shapes world's vocabulary: attribute values, their names, and caption templates.

Everything that names something in the world lives here, so the renderer, the generator,
the caption sampler, the prompt parser and the classifiers agree by construction.
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross")

# Object and background colours are prototypes in HSV; the generator adds a bounded jitter
# around the prototype it picks, so the name of any generated colour is its prototype's name.
COLOURS: tuple[str, ...] = ("red", "orange", "yellow", "green", "blue", "purple", "white", "black")
COLOUR_HSV: dict[str, tuple[float, float, float]] = {
    "red": (0.0, 0.85, 0.90),
    "orange": (0.075, 0.90, 1.00),
    "yellow": (0.155, 0.85, 0.95),
    "green": (0.36, 0.80, 0.70),
    "blue": (0.61, 0.85, 0.90),
    "purple": (0.79, 0.70, 0.70),
    "white": (0.0, 0.0, 0.97),
    "black": (0.0, 0.0, 0.06),
}
# Half-widths of the jitter box around each prototype (hue, saturation, value).
COLOUR_JITTER: tuple[float, float, float] = (0.02, 0.12, 0.10)

SIZES: tuple[str, ...] = ("small", "big")
# Object radius in units of the image half-width; below SIZE_THRESHOLD the object is "small".
SIZE_RANGE: tuple[float, float] = (0.2, 0.5)
SIZE_THRESHOLD: float = 0.35

POSITIONS: tuple[str, ...] = ("centre", "left", "right", "top", "bottom")
# An object whose centre lies within this offset of the image centre (both axes) is "centre";
# otherwise its larger offset axis names it.
CENTRE_RADIUS: float = 0.2
# Margin kept between the object and the image border.
BORDER_MARGIN: float = 0.04
ROTATION_RANGE: float = 0.4  # radians, either way

# Words a prompt may use for each value; the first is the canonical word in captions.
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "shape": {
        "circle": ("circle", "disc", "disk"),
        "square": ("square",),
        "triangle": ("triangle",),
        "star": ("star",),
        "ring": ("ring",),
        "cross": ("cross", "plus"),
    },
    "colour": {c: (c,) for c in COLOURS} | {"purple": ("purple", "violet")},
    "size": {"small": ("small", "little", "tiny"), "big": ("big", "large", "huge")},
    "position": {
        "centre": ("in the centre", "in the center", "in the middle"),
        "left": ("on the left", "at the left"),
        "right": ("on the right", "at the right"),
        "top": ("at the top", "on the top"),
        "bottom": ("at the bottom", "on the bottom"),
    },
}

# Attributes a caption may name, in the order the parser and the truth tables use.
ATTRIBUTES: tuple[str, ...] = ("shape", "colour", "size", "position", "background")
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": COLOURS,
    "size": SIZES,
    "position": POSITIONS,
    "background": COLOURS,
}

# Caption templates. {obj} is "<size> <colour> <shape>" with any of the three left out
# (a missing shape reads "shape"); {pos} and {bg} are filled only where the template has them.
TEMPLATES: tuple[str, ...] = (
    "{a} {obj}",
    "{a} {obj} {pos}",
    "{a} {obj} on {a_bg} {bg} background",
    "{a} {obj} {pos} on {a_bg} {bg} background",
    "a picture of {a} {obj}",
    "a picture of {a} {obj} {pos}",
    "{a} {obj} on {a_bg} {bg} background {pos}",
)

MAX_OBJECTS: int = 2


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
