"""The shapes world: attributes, renderer, captions — the ground truth of every offline image."""

from .attributes import ATTRIBUTE_VALUES, ATTRIBUTES, COLOURS, POSITIONS, SHAPES, SIZES
from .captions import caption_text, parse_prompt, truth_matrix
from .render import Scene, render
from .scenes import coords_needed, random_scenes, scene_from_coords

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_VALUES",
    "COLOURS",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "Scene",
    "caption_text",
    "coords_needed",
    "parse_prompt",
    "random_scenes",
    "render",
    "scene_from_coords",
    "truth_matrix",
]
