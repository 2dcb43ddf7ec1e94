"""Weights the project cannot train (BigGAN, StyleGAN2, OpenAI CLIP, ResNet, Inception, data
sets' classifiers): where they are looked for, and loading them safely.

Every such model looks in one directory, `weights=` in the config, else `$LATENTEVO_WEIGHTS`,
else `~/.cache/latentevo/weights`. A missing or unreadable file stops the run with one line that
names the model, where it was looked for and how to provide it."""

from __future__ import annotations

import os
import pickle
import socket
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import WeightsError

WEIGHTS_ENV = "LATENTEVO_WEIGHTS"
DEFAULT_DIR = Path("~/.cache/latentevo/weights")
# Any of these set to 1/true: never try a download (Hugging Face's own switch counts too).
OFFLINE_ENV = ("LATENTEVO_OFFLINE", "HF_HUB_OFFLINE")
# A host that does not answer this fast counts as unreachable, so that an offline machine stops
# at once instead of waiting through a library's retries.
CONNECT_TIMEOUT_S = 3.0


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
        raise missing_weights(model, path, how_to_get)
    return path


def missing_weights(model: str, path: Path, how_to_get: str, why: str = "") -> WeightsError:
    return WeightsError(
        f"no weights for {model}: {path} does not exist{why}; {how_to_get}, put it there "
        f"(or set weights=<dir> / ${WEIGHTS_ENV}), or use random_init=true"
    )


def can_download(url: str) -> bool:
    """Whether a download from `url` is worth trying: no offline switch is set and its host
    accepts a connection within CONNECT_TIMEOUT_S."""
    if any(os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"} for name in OFFLINE_ENV):
        return False
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def locate_or_download(model: str, filename: str, directory: str | Path | None, how_to_get: str,
                       url: str, download: Callable[[str, Path], None]) -> Path:
    """Like `locate`, but a missing file is first fetched from `url` with `download(url, path)`
    (the model library's own download) when the network allows; offline it is the same
    one-line WeightsError, raised without waiting."""
    path = weights_dir(directory) / filename
    if path.is_file():
        return path
    if not can_download(url):
        raise missing_weights(model, path, how_to_get,
                              f" and {urlparse(url).hostname} cannot be reached to download it")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        download(url, partial)
        partial.replace(path)
    except Exception as err:  # any failure of a third-party download is the same user-facing error
        partial.unlink(missing_ok=True)
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise missing_weights(model, path, how_to_get, f" and downloading {url} failed ({reason})") from err
    return path


def load_checkpoint(path: str | Path, model: str) -> dict[str, torch.Tensor | object]:
    """A checkpoint's contents, from safetensors or a PyTorch file loaded with
    weights_only=True (no arbitrary code runs); a corrupt file is a WeightsError."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile,
            pickle.UnpicklingError) as err:
        # torch's weights-only refusal suggests weights_only=False, which this project never uses
        weights_only = isinstance(err, pickle.UnpicklingError)
        reason = ("it holds more than tensors and plain containers" if weights_only
                  else (str(err).splitlines() or [type(err).__name__])[0])
        raise WeightsError(f"cannot read the {model} weights {path} (corrupt, truncated or not a checkpoint): "
                           f"{reason}") from err


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], model: str, source: str | Path) -> None:
    """load_state_dict, strict, with a mismatch reported as one line."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise WeightsError(f"the weights in {source} do not fit {model}: {first}") from err
