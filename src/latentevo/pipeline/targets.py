"""A run's target embeddings, one per prompt term: text terms through the scorer's text tower,
an image prompt (a file, or a shapes-world scene) through its image tower."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError
from ..models.base import Scorer
from ..prompts import SCENE_PREFIX, Prompt, image_file, is_scene, parse_scene
from ..world import render
from ..world.scenes import named_scene

#: side of a rendered scene prompt: the shapes world's own resolution (the scorer resizes it)
SCENE_RESOLUTION = 64
#: PIL modes of more than 8 bits a channel, read as numbers and scaled to [0, 1] by their range
WIDE_MODES = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I": 65535, "F": 1.0}


def read_image(path) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1] from an image file of any mode PIL reads (palette, grey, CMYK,
    alpha dropped, 16-bit grey scaled)."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in WIDE_MODES:
                grey = np.asarray(image, dtype=np.float64) / WIDE_MODES[image.mode]
                pixels = np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=-1)
            else:
                pixels = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
    except UnidentifiedImageError:
        raise ConfigError(f"image_prompt {path} is not an image PIL can read; give a PNG or JPEG file") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"image_prompt {path} cannot be read ({err}); save it again as an 8-bit RGB PNG") from None
    return torch.from_numpy(pixels).float().permute(2, 0, 1)[None]


def prompt_image(source: str) -> torch.Tensor:
    """The image an image prompt means: the file, or the rendered scene."""
    if is_scene(source):
        return render(named_scene(parse_scene(source.removeprefix(SCENE_PREFIX))), SCENE_RESOLUTION)
    return read_image(image_file(source))


@torch.inference_mode()
def target_embeddings(scorer: Scorer, prompt: Prompt) -> torch.Tensor:
    """(T, D) unit-norm targets. Each text term is embedded alone, so that a term's target (and a
    plain prompt's) is the same whatever other terms the prompt has."""
    rows = [scorer.embed_images(prompt_image(t.image))[0] if t.image is not None else scorer.embed_text([t.text])[0]
            for t in prompt.terms]
    return torch.stack(rows)
