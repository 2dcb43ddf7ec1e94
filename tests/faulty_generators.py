"""Shapes-world models that misbehave on purpose, for tests that run the real CLI
(`generator._target_=faulty_generators.<Name>` with this folder on PYTHONPATH) or packs in-process."""

import os
import time

import torch

from latentevo.errors import WeightsError
from latentevo.models.clip import OpenClipScorer, shapes_clip
from latentevo.models.shapes import ShapesGenerator

#: seconds each batch of images takes in SlowShapes (0 unless the test sets it)
DELAY_ENV = "FAULTY_GENERATOR_DELAY_S"


class SlowShapes(ShapesGenerator):
    """The shapes world, slowed down so that a test can signal or kill a run mid-way. The delay
    comes from the environment, so that slow and fast runs have the same config."""

    def synthesize(self, z):
        time.sleep(float(os.environ.get(DELAY_ENV, "0")))
        return super().synthesize(z)


class BadValueShapes(ShapesGenerator):
    """Generation 0 is fine; in the first offspring batch one image is `value` (NaN or inf)."""

    value = float("nan")

    def synthesize(self, z):
        images = super().synthesize(z)
        if len(z) > 1 and getattr(self, "_batches", 0) > 0:
            images[0] = self.value
        self._batches = getattr(self, "_batches", 0) + 1
        return images


class NaNShapes(BadValueShapes):
    value = float("nan")


class InfShapes(BadValueShapes):
    value = float("inf")


class PoisonedPrompts(OpenClipScorer):
    """The shapes-world mini-CLIP, whose embedding of any prompt naming "poison" is NaN: in a
    pack, only that run's fitness is NaN."""

    def __init__(self):
        clip = shapes_clip()
        super().__init__(clip.model, clip.model_name)

    def embed_text(self, texts):
        embedded = super().embed_text(texts)
        embedded[[i for i, text in enumerate(texts) if "poison" in text]] = torch.nan
        return embedded


def missing_classifier(**kwargs):
    """An evaluation classifier whose weights are missing."""
    raise WeightsError("missing weights: the classifier's weights file does not exist")
