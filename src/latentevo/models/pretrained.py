"""Weights the project cannot train (BigGAN, StyleGAN2, OpenAI CLIP, ResNet, Inception, data
sets' classifiers): where they are looked for, and loading them safely.

Every such model looks in one directory, `weights=` in the config, else `$LATENTEVO_WEIGHTS`,
else `~/.cache/latentevo/weights`. A missing or unreadable file stops the run with one line that
names the model, where it was looked for and how to provide it."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import WeightsError

WEIGHTS_ENV = "LATENTEVO_WEIGHTS"
DEFAULT_DIR = Path("~/.cache/latentevo/weights")


def weights_dir(configured: str | Path | None = None) -> Path:
    """The directory external weights are looked for in."""
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_DIR).expanduser()


def locate(model: str, filename: str, directory: str | Path | None, how_to_get: str) -> Path:
    """Path of `filename` in the weights directory, or a WeightsError naming the model, the
    path looked at and `how_to_get` (where the file comes from)."""
    path = weights_dir(directory) / filename
    if not path.is_file():
        raise WeightsError(
            f"no weights for {model}: {path} does not exist; {how_to_get}, put it there "
            f"(or set weights=<dir> / ${WEIGHTS_ENV}), or use random_init=true"
        )
    return path


def load_checkpoint(path: str | Path, model: str) -> dict[str, torch.Tensor | object]:
    """A checkpoint's contents, from safetensors or a PyTorch file loaded with
    weights_only=True (no arbitrary code runs); a corrupt file is a WeightsError."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        # torch's weights-only refusal suggests weights_only=False, which this project never uses
        weights_only = isinstance(err, pickle.UnpicklingError)
        reason = "it holds more than tensors and plain containers" if weights_only else (str(err).splitlines() or [type(err).__name__])[0]
        raise WeightsError(f"cannot read the {model} weights {path} (corrupt, truncated or not a checkpoint): {reason}") from err


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], model: str, source: str | Path) -> None:
    """load_state_dict, strict, with a mismatch reported as one line."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise WeightsError(f"the weights in {source} do not fit {model}: {first}") from err
