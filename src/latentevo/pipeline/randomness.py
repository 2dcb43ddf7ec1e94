"""A run's own random streams. Runs of a pack share one process, whose global generators
(Python's, NumPy's, torch's) some algorithms draw from (`cma`, behind CMA-ES, uses NumPy's):
each run swaps its own states in around its steps, so it draws what it would draw alone."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def _global_states() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state().numpy()}


def _set_global_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(torch.from_numpy(states["torch"]))


class RunRandomness:
    """The global states as `seed` sets them, and the scorer's views' generator from `views_seed`."""

    def __init__(self, seed: int, views_seed: int):
        self._states = {
            "python": random.Random(seed).getstate(),
            "numpy": np.random.RandomState(seed).get_state(),
            "torch": torch.Generator().manual_seed(seed).get_state().numpy(),
        }
        self.views = torch.Generator().manual_seed(views_seed)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """The run's states are the global ones inside. The states found on entering are not put
        back on leaving (half the cost: a NumPy state takes 40-50 us to get or set): every run
        sets its own on entering, so what is drawn between runs' steps reaches none of them."""
        _set_global_states(self._states)
        try:
            yield
        finally:
            self._states = _global_states()

    def state(self) -> dict[str, Any]:
        """As a checkpoint keeps it (numpy arrays, no torch objects)."""
        return self._states | {"views": self.views.get_state().numpy()}

    def restore(self, state: dict[str, Any]) -> None:
        self._states = {k: state[k] for k in ("python", "numpy", "torch")}
        self.views.set_state(torch.from_numpy(state["views"]))
