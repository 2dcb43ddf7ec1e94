"""Shapes-world generators that misbehave on purpose, for tests that run the real CLI
(`generator._target_=faulty_generators.<Name>` with this folder on PYTHONPATH)."""

import os
import time

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
