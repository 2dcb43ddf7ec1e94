"""Animated GIFs of a run's logged generations, one captioned frame per generation."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

#: a frame's longer side at most (a population grid of many images is scaled down), and at most
#: this many frames (evenly spaced, the first and last kept): a GIF stays a few MB at most
GIF_MAX_SIDE = 640
MAX_GIF_FRAMES = 100
FRAME_MS = 400
CAPTION_PX = 14


def spaced_steps(steps: list[int], most: int = MAX_GIF_FRAMES) -> list[int]:
    """`steps` in order, thinned evenly to at most `most`, keeping the first and the last."""
    steps = sorted(steps)
    if len(steps) <= most:
        return steps
    return [steps[i] for i in np.linspace(0, len(steps) - 1, most).round().astype(int)]


def gif_frame(image: np.ndarray, step: int) -> np.ndarray:
    """The image, at most GIF_MAX_SIDE px, above a caption naming its generation; the caption also
    keeps frames distinct, which PIL would otherwise merge when the best image stays the same."""
    frame = Image.fromarray(image)
    # bilinear (antialiased when shrinking): a grid's frame in 40 % of Lanczos's time
    frame.thumbnail((GIF_MAX_SIDE, GIF_MAX_SIDE), Image.Resampling.BILINEAR)
    captioned = Image.new("RGB", (frame.width, frame.height + CAPTION_PX), "white")
    captioned.paste(frame)
    ImageDraw.Draw(captioned).text((3, frame.height + 2), f"gen {step}", fill="black")
    return np.asarray(captioned)
